// AwsCredentials: the key pair (and optional session token) that signs S3 requests.
#pragma once

#include "util/Result.h"

#include <optional>
#include <string>
#include <string_view>

namespace ringcap {

struct AwsCredentials {
  std::string accessKeyId;
  std::string secretAccessKey;
  std::string sessionToken; // "" when the credentials are long-term keys
};

// Where the credentials come from, first match wins:
//   1. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN when set);
//      only one of the two set is an error (EINVAL).
//   2. `file`: an AWS shared-credentials file (INI; aws_access_key_id, aws_secret_access_key,
//      aws_session_token), section [$AWS_PROFILE] or [default].
//   3. Without `file`: $CREDENTIALS_DIRECTORY/aws-credentials, when systemd's
//      LoadCredential=aws-credentials:... provides it; same format.
// Errors name the source, the profile and the missing key (ENOENT: no such file, profile or
// source; EINVAL: malformed), and never contain a secret value or a line of the file.
Result<AwsCredentials> loadAwsCredentials(const std::optional<std::string> &file);

// Parses the text of a shared-credentials file (`source` names it in errors).
Result<AwsCredentials> parseAwsCredentialsFile(std::string_view text, const std::string &profile,
                                               const std::string &source);

} // namespace ringcap

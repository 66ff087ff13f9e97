// Command-line tools take the request fields as options (--time-limit for time_limit); their
// users should read the option names in the validator's messages.
#pragma once

#include <string>

namespace ringcap {

// "time_limit: must be ..." -> "--time-limit: must be ..."; other messages unchanged.
std::string fieldMessageToOptions(const std::string &message);

} // namespace ringcap

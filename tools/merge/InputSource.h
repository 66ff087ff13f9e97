// InputSource: one capture to merge, opened as often as the merge needs (a second time when
// interfaces are declared after packets). Input arguments expand to sources: a local path is
// one source, an s3:// prefix one source per matching object.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pcap/PcapReader.h"
#include "util/Result.h"

namespace ringcap {

class InputSource {
public:
  virtual ~InputSource() = default;
  // Names the input in messages and in the output's interface descriptions.
  virtual const std::string &name() const = 0;
  virtual Result<std::unique_ptr<PcapReader>> open() = 0;
  // Whether open() gives the same bytes again (not so for a pipe).
  virtual bool reopenable() const = 0;
  // An error of the reader, naming this input instead of the path the reader was given.
  Error own(Error e) const;

protected:
  // The path PcapReader::open() was given, if not name().
  virtual std::string readerPath() const { return name(); }
};

class LocalFileSource : public InputSource {
public:
  explicit LocalFileSource(std::string path) : path_(std::move(path)) {}
  const std::string &name() const override { return path_; }
  Result<std::unique_ptr<PcapReader>> open() override { return PcapReader::open(path_); }
  bool reopenable() const override;

private:
  std::string path_;
};

struct InputSettings {
  std::optional<std::string> credentialsFile; // for s3:// inputs (see loadAwsCredentials)
};

// The sources an argument names: a local path, or "s3://bucket/prefix?region=R&endpoint=URL":
// every object below the prefix (at any depth) named pcap_*.pcap, in key order. An object is
// downloaded when first opened, into an unlinked temporary file in $TMPDIR (default /tmp).
Result<std::vector<std::unique_ptr<InputSource>>> expandInput(const std::string &arg,
                                                              const InputSettings &settings);

// One S3 object, "s3://bucket/key?region=R&endpoint=URL" (the whole key, whatever its name),
// downloaded when first opened like expandInput's. `defaultEndpoint` is used when the URI names
// no endpoint ("" for AWS).
Result<std::unique_ptr<InputSource>> s3ObjectInput(const std::string &uri,
                                                   const InputSettings &settings,
                                                   const std::string &defaultEndpoint = "");

} // namespace ringcap

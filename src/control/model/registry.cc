#include "control/model/registry.h"

#include "control/model/host.h"

namespace mast::control::model {

Protocol parseProtocol(std::string_view s) {
  std::string p = toLower(s);
  if (p == "http") return Protocol::kHttp;
  if (p == "http2") return Protocol::kHttp2;
  if (p == "grpc") return Protocol::kGrpc;
  if (p == "grpc-web") return Protocol::kGrpcWeb;
  if (p == "https") return Protocol::kHttps;
  if (p == "tls") return Protocol::kTls;
  if (p == "tcp") return Protocol::kTcp;
  if (p == "mongo") return Protocol::kMongo;
  if (p == "redis") return Protocol::kRedis;
  if (p == "mysql") return Protocol::kMysql;
  if (p == "udp") return Protocol::kUdp;
  return Protocol::kAuto;
}

Protocol protocolFromPortName(std::string_view name) {
  std::string n = toLower(name);
  if (n.rfind("grpc-web", 0) == 0) return Protocol::kGrpcWeb;
  return parseProtocol(n.substr(0, n.find('-')));
}

std::string_view protocolName(Protocol p) {
  switch (p) {
    case Protocol::kHttp:
      return "HTTP";
    case Protocol::kHttp2:
      return "HTTP2";
    case Protocol::kGrpc:
      return "GRPC";
    case Protocol::kGrpcWeb:
      return "GRPC-Web";
    case Protocol::kHttps:
      return "HTTPS";
    case Protocol::kTls:
      return "TLS";
    case Protocol::kTcp:
      return "TCP";
    case Protocol::kMongo:
      return "Mongo";
    case Protocol::kRedis:
      return "Redis";
    case Protocol::kMysql:
      return "MySQL";
    case Protocol::kUdp:
      return "UDP";
    case Protocol::kAuto:
      break;
  }
  return "UnsupportedProtocol";
}

bool isHttpProtocol(Protocol p) {
  return p == Protocol::kHttp || p == Protocol::kHttp2 || p == Protocol::kGrpc ||
         p == Protocol::kGrpcWeb;
}

bool isHttp2Protocol(Protocol p) {
  return p == Protocol::kHttp2 || p == Protocol::kGrpc || p == Protocol::kGrpcWeb;
}

bool isTlsProtocol(Protocol p) { return p == Protocol::kHttps || p == Protocol::kTls; }

const ServicePort* Service::port(uint32_t number) const {
  for (const auto& p : ports) {
    if (p.number == number) return &p;
  }
  return nullptr;
}

}  // namespace mast::control::model

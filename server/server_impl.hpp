#pragma once
// Internal to the server: the state its threads and routes share.
#include <atomic>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/crypto.hpp"
#include "server/http_server.hpp"
#include "server/notifier.hpp"
#include "server/pg.hpp"
#include "server/pg_instance.hpp"
#include "server/server.hpp"

namespace lockstep::server {

struct Server::Impl {
  ServerConfig cfg;
  std::unique_ptr<PgInstance> pg_owned;  // the private database, when no --db
  std::unique_ptr<pg::Pool> db;
  std::optional<SecretBox> box;
  std::string admin_token;
  Notifier notifier;
  std::unique_ptr<HttpServer> http;
  std::vector<std::thread> workers;
  std::atomic<bool> stopping{false};

  HttpResponse route(const HttpRequest& req);
  void background();  // starts the worker threads
};

// api.cpp
HttpResponse json_response(int status, const nlohmann::json& body);
HttpResponse error_response(int status, const std::string& message);
HttpResponse error_response(const Error& e);
std::optional<int64_t> parse_id(const std::string& s);
// Sets a repository's secret (encrypted) or variable.
Status store_secret(pg::Pool& db, const SecretBox& box, const std::string& repo,
                    const std::string& kind, const std::string& name, const std::string& value);

// agent_api.cpp: /api/agent/*
HttpResponse agent_route(Server::Impl& s, const HttpRequest& req);
// hooks.cpp: /hooks/*
HttpResponse hook_route(Server::Impl& s, const HttpRequest& req);
// ui.cpp: / and /ui/*
std::optional<HttpResponse> ui_route(const HttpRequest& req);

}  // namespace lockstep::server

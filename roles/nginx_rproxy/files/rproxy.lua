-- paas-rproxy: the proxies' Lua data plane (role nginx_rproxy; installed as <conf_dir>/lua/rproxy.lua).
--
-- Routing data lives in one file per app, <conf_dir>/apps/<id>.json, written by the nginx_rproxy_routes module
-- (the durable truth). init() loads every file into the shared dict at start and at every reload, so a restarted
-- nginx or a rebooted host serves every route with no controller run. apply() (a POST on a root-only unix socket)
-- changes apps live without a reload, all-or-nothing. route() (access phase) finds the app of the request,
-- balance() (balancer_by_lua) picks its gear.
--
-- Shared dict "rproxy_routes": "a:<id>" = the app's JSON, "h:<name>" = id (exact name), "w:<suffix>" = id
-- (wildcard "*.<suffix>"), "gen" = generation, bumped on every change (workers drop their caches).
-- Shared dict "rproxy_peers": "f:<addr:port>" = recent failures of a gear (passive health, max_fails/fail_timeout).
-- Apache-2.0
local cjson = require "cjson.safe"
local lrucache = require "resty.lrucache"

local ngx = ngx
local type, pairs, ipairs, tonumber, tostring = type, pairs, ipairs, tonumber, tostring
local sub, find, lower, byte = string.sub, string.find, string.lower, string.byte
local re_find = ngx.re.find

local _M = {}

local ROUTES = ngx.shared.rproxy_routes
local PEERS = ngx.shared.rproxy_peers
local json = cjson.new()
json.decode_max_depth(8)

local cfg = {
  max_fails = 3, fail_timeout = 10, tries = 2, connect_timeout = 5, ws_timeout = 3600, worker_cache = 10000,
}

-- The checks of the action plugin (roles/nginx_rproxy/action_plugins/nginx_rproxy_routes.py), repeated here: the
-- apply endpoint trusts nothing. Each is anchored, bounded in length first, and linear.
-- \z, not $: PCRE's $ also matches before a final newline ("a-b\n" would pass)
local ID_RE = [==[^[a-z0-9]+-[a-z0-9]+\z]==]
local HOST_RE = [==[^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?\z]==]
local BACKEND_RE = [==[^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]):(\d{1,5})\z]==]
local PATH_RE = [==[^/[A-Za-z0-9._~!&()*+,=:@%/-]{0,1023}\z]==]
local TO_RE = [==[^(?:/[A-Za-z0-9._~!&()*+,=:@%/-]{0,1023})?/\$1\z]==]
local MAX_LIST = 100000
local APP_KEYS = { id = true, names = true, backends = true, websocket = true, root_location = true, locations = true }
local LOC_KEYS = { path = true, rewrite_to = true }

local function matches(s, re, maxlen)
  return type(s) == "string" and #s <= maxlen and re_find(s, re, "jo") ~= nil
end

-- a JSON array: a table whose keys are exactly 1..n (cjson decodes [] and {} alike: both are empty tables)
local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = 0
  for k in pairs(t) do
    if type(k) ~= "number" then return false end
    n = n + 1
    if n > MAX_LIST then return false end
  end
  return n == #t
end

--- nil when `d` is a valid app record for `id`, else the reason.
local function check_app(id, d)
  if not matches(id, ID_RE, 64) then return "bad app id" end
  if type(d) ~= "table" then return "app " .. id .. ": not an object" end
  for k in pairs(d) do
    if not APP_KEYS[k] then return "app " .. id .. ": unknown field " .. tostring(k):sub(1, 40) end
  end
  if d.id ~= id then return "app " .. id .. ": id does not match" end
  if type(d.websocket) ~= "boolean" then return "app " .. id .. ": websocket must be a boolean" end
  if type(d.root_location) ~= "boolean" then return "app " .. id .. ": root_location must be a boolean" end
  if not is_list(d.names) or #d.names == 0 then return "app " .. id .. ": names must be a non-empty list" end
  for _, n in ipairs(d.names) do
    if not matches(n, HOST_RE, 253) then return "app " .. id .. ": bad server name" end
  end
  if not is_list(d.backends) then return "app " .. id .. ": backends must be a list" end
  for _, b in ipairs(d.backends) do
    if type(b) ~= "string" or #b > 64 then return "app " .. id .. ": bad backend" end
    local m = ngx.re.match(b, BACKEND_RE, "jo")
    local port = m and tonumber(m[2])
    if not port or port < 1 or port > 65535 then return "app " .. id .. ": bad backend" end
  end
  if not is_list(d.locations) then return "app " .. id .. ": locations must be a list" end
  local seen = {}
  for _, l in ipairs(d.locations) do
    if type(l) ~= "table" then return "app " .. id .. ": a location is not an object" end
    for k in pairs(l) do
      if not LOC_KEYS[k] then return "app " .. id .. ": unknown location field" end
    end
    if not matches(l.path, PATH_RE, 1024) then return "app " .. id .. ": bad location path" end
    if not matches(l.rewrite_to, TO_RE, 1030) then return "app " .. id .. ": bad location rewrite_to" end
    if seen[l.path] then return "app " .. id .. ": two locations for one path" end
    seen[l.path] = true
  end
  if d.root_location == (seen["/"] == true) then
    return "app " .. id .. ": root_location must be true exactly when no location has path /"
  end
  return nil
end
_M.check_app = check_app

-- "h:<name>" or "w:<suffix>" for a server name: case-insensitive, trailing dot dropped (as nginx's $host)
local function name_key(n)
  n = lower(n)
  if byte(n, -1) == 46 then n = sub(n, 1, -2) end
  if sub(n, 1, 2) == "*." then return "w:" .. sub(n, 3) end
  return "h:" .. n
end

local function parse_time(v, what)
  if type(v) == "number" then return v end
  local m = type(v) == "string" and ngx.re.match(v, [[^(\d{1,9})(ms|s|m|h|d|w|M|y)?\z]], "jo")
  if not m then error("rproxy: " .. what .. " must be an nginx time (e.g. 10s), got " .. tostring(v)) end
  local mult = ({ ms = 0.001, s = 1, m = 60, h = 3600, d = 86400, w = 604800, M = 2592000, y = 31536000 })[m[2] or "s"]
  return tonumber(m[1]) * mult
end

-- Applies a batch to the shared dict, all-or-nothing. `set`: id -> decoded record (checked), `delete`: ids.
-- Every changed key is journaled first; safe_set never evicts, so a full dict fails the batch and the journal
-- puts every key back.
local function commit(set, delete)
  local journal, jn = {}, 0
  local function put(key, value)
    jn = jn + 1
    journal[jn] = { key, ROUTES:get(key) }
    local ok, err = true, nil
    if value == nil then ROUTES:delete(key) else ok, err = ROUTES:safe_set(key, value) end
    if not ok then error({ msg = "shared dict rproxy_routes: " .. tostring(err) .. " (raise nginx_rproxy_routes_dict_size)" }) end
  end
  local ok, err = pcall(function()
    -- the names the batch gives out: they are overwritten below, never deleted first (a reload's init re-commits
    -- every app: deleting then re-adding each name would answer 404 for every app during that window)
    local given = {}
    for _, rec in pairs(set) do
      for _, n in ipairs(rec.names) do given[name_key(n)] = true end
    end
    -- the old names of every touched app that the batch does not give out again go first (a name may move from
    -- one app to another in one batch: it is then overwritten, not deleted)
    local touched = {}
    for _, id in ipairs(delete) do touched[#touched + 1] = id end
    for id in pairs(set) do touched[#touched + 1] = id end
    for _, id in ipairs(touched) do
      local old = ROUTES:get("a:" .. id)
      local rec = old and json.decode(old)
      if rec and type(rec.names) == "table" then
        for _, n in ipairs(rec.names) do
          local k = name_key(n)
          if not given[k] and ROUTES:get(k) == id then put(k, nil) end
        end
      end
    end
    for _, id in ipairs(delete) do put("a:" .. id, nil) end
    for id, rec in pairs(set) do
      put("a:" .. id, json.encode(rec))
      for _, n in ipairs(rec.names) do put(name_key(n), id) end
    end
  end)
  if not ok then
    for i = jn, 1, -1 do
      local k, v = journal[i][1], journal[i][2]
      if v == nil then ROUTES:delete(k) else ROUTES:set(k, v) end
    end
    -- a worker that looked a host up mid-batch cached what it saw (a name deleted, not yet put back) under the
    -- current generation: move it, or that worker keeps the stale answer until the next successful apply
    ROUTES:incr("gen", 1, 0)
    return nil, type(err) == "table" and err.msg or tostring(err)
  end
  ROUTES:incr("gen", 1, 0)
  return true
end

-- LuaJIT FFI directory listing (no shell, no extra Lua package): the app files of <conf_dir>/apps.
local function list_json(dir)
  local ffi = require "ffi"
  pcall(ffi.cdef, [[
    typedef struct __dirstream DIR;
    DIR *opendir(const char *name);
    int closedir(DIR *dirp);
    struct rproxy_dirent { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[256]; };
    struct rproxy_dirent *readdir(DIR *dirp);
  ]])
  local names = {}
  local d = ffi.C.opendir(dir)
  if d == nil then return names end
  while true do
    local e = ffi.C.readdir(d)
    if e == nil then break end
    local n = ffi.string(e.d_name)
    if sub(n, -5) == ".json" and byte(n, 1) ~= 46 then names[#names + 1] = n end
  end
  ffi.C.closedir(d)
  table.sort(names)
  return names
end

-- The apply socket, before nginx binds it (init_by_lua runs while the configuration is read, before the listening
-- sockets are opened): its directory is created root-only when missing (a /run on tmpfs after a reboot), and a
-- socket file nobody listens on (left by a killed nginx) is removed, else the bind fails and nginx cannot start. A
-- live socket (the running master's, during a reload or `nginx -t`) answers connect() and is left alone.
local function prepare_socket(path)
  if type(path) ~= "string" or path == "" then return end
  local ffi = require "ffi"
  pcall(ffi.cdef, [[
    int socket(int domain, int type, int protocol);
    int connect(int fd, const void *addr, uint32_t len);
    int close(int fd);
    int unlink(const char *path);
    int mkdir(const char *path, uint32_t mode);
    struct rproxy_sockaddr_un { uint16_t sun_family; char sun_path[108]; };
  ]])
  local C = ffi.C
  local dir = path:match("^(.*)/[^/]+$")
  if dir and dir ~= "" then C.mkdir(dir, 448) end -- 0700; EEXIST is fine (the role set its mode)
  if #path >= 108 then return end
  local fd = C.socket(1, 1, 0) -- AF_UNIX, SOCK_STREAM
  if fd < 0 then return end
  local sa = ffi.new("struct rproxy_sockaddr_un")
  sa.sun_family = 1
  ffi.copy(sa.sun_path, path)
  local rc = C.connect(fd, sa, ffi.sizeof(sa))
  local err = ffi.errno()
  C.close(fd)
  if rc ~= 0 and err == 111 then -- ECONNREFUSED: a file, nobody listening
    C.unlink(path)
    ngx.log(ngx.NOTICE, "rproxy: removed the stale apply socket ", path)
  end
end

--- init_by_lua: settings, then every app file into the shared dict (start and every reload; `nginx -t` does not run it).
-- A file that fails its check is logged and skipped: one bad file never takes the other routes down.
function _M.init(conf)
  cfg.apps_dir = conf.apps_dir
  cfg.max_fails = tonumber(conf.max_fails) or cfg.max_fails
  cfg.fail_timeout = parse_time(conf.fail_timeout, "fail_timeout")
  cfg.tries = tonumber(conf.tries) or cfg.tries
  cfg.connect_timeout = parse_time(conf.connect_timeout, "connect_timeout")
  cfg.ws_timeout = parse_time(conf.ws_timeout, "ws_timeout")
  cfg.worker_cache = tonumber(conf.worker_cache) or cfg.worker_cache
  prepare_socket(conf.apply_socket)
  local set, wanted = {}, {}
  for _, f in ipairs(list_json(cfg.apps_dir)) do
    local id = sub(f, 1, -6)
    local fh = io.open(cfg.apps_dir .. "/" .. f, "rb")
    local text = fh and fh:read("*a")
    if fh then fh:close() end
    local rec = text and json.decode(text)
    local err = check_app(id, rec)
    if err then
      ngx.log(ngx.ERR, "rproxy: skipping ", cfg.apps_dir, "/", f, ": ", err)
    else
      set[id] = rec
      wanted["a:" .. id] = true
      for _, n in ipairs(rec.names) do wanted[name_key(n)] = true end
    end
  end
  -- a reload keeps the dict: drop what no file holds any more (deleted while nginx was down, or a failed POST)
  for _, k in ipairs(ROUTES:get_keys(0)) do
    if k ~= "gen" and not wanted[k] then ROUTES:delete(k) end
  end
  local ok, err = commit(set, {})
  if not ok then error("rproxy: cannot load the routes: " .. err) end
  local n = 0
  for _ in pairs(set) do n = n + 1 end
  ngx.log(ngx.NOTICE, "rproxy: loaded ", n, " apps from ", cfg.apps_dir)
end

-- per worker: decoded apps by host (and by id), dropped when the generation moves
local cache, cache_gen
local rr = {}

local function peers_of(rec)
  local peers = {}
  for i, b in ipairs(rec.backends) do
    local m = ngx.re.match(b, BACKEND_RE, "jo")
    peers[i] = { host = m[1], port = tonumber(m[2]), key = "f:" .. b }
  end
  return peers
end

local function load_app(id)
  local text = ROUTES:get("a:" .. id)
  local rec = text and json.decode(text)
  if not rec then return false end
  rec.peers = peers_of(rec)
  return rec
end

local function lookup(host)
  local id = ROUTES:get(name_key(host))
  if id then return id end
  -- wildcard names: the longest suffix first ("*.b.example.com" before "*.example.com")
  local pos = 1
  while true do
    local dot = find(host, ".", pos, true)
    if not dot then return nil end
    id = ROUTES:get("w:" .. lower(sub(host, dot + 1)))
    if id then return id end
    pos = dot + 1
  end
end

local function cached(key, fetch)
  local gen = ROUTES:get("gen") or 0
  if not cache then cache = lrucache.new(cfg.worker_cache) end
  if gen ~= cache_gen then
    cache:flush_all()
    cache_gen = gen
  end
  local v = cache:get(key)
  if v == nil then
    v = fetch() or false
    cache:set(key, v)
  end
  return v
end

--- access_by_lua of the routed servers: 404 unknown host, 503 no gear, path mappings, websocket headers.
-- $rproxy_app set by a server (the TLS servers of an app) routes to that app whatever the Host header says.
function _M.route()
  local var = ngx.var
  local app
  local pinned = var.rproxy_app
  if pinned and pinned ~= "" then
    -- one prefix per kind of key: a Host header is the client's ("Host: #<id>" once cached a 404 under the pinned
    -- key of that app, and its TLS servers answered 404 on that worker until the next change)
    app = cached("p:" .. pinned, function() return load_app(pinned) end)
  else
    local host = var.host or ""
    if byte(host, -1) == 46 then host = sub(host, 1, -2) end
    -- no server name is longer (check_app), and the wildcard lookup below is quadratic in the length: an 8 KB
    -- Host of 4,000 labels cost a worker ~70 ms of CPU per request, and filled the worker cache with 8 KB keys
    if #host > 253 then return ngx.exit(404) end
    app = cached("h:" .. host, function()
      local id = lookup(lower(host))
      return id and load_app(id)
    end)
  end
  if not app then return ngx.exit(404) end
  if #app.peers == 0 then return ngx.exit(503) end
  -- path mappings: the longest location prefix wins (as nginx's prefix locations); its prefix becomes the
  -- backend path, exactly as `rewrite "^<path>/*(.*)$" "<backend>/$1" break` did
  local uri = var.uri
  local best
  for _, l in ipairs(app.locations) do
    local p = l.path
    if sub(uri, 1, #p) == p and (not best or #p > #best.path) then best = l end
  end
  if best then
    local rest_at = #best.path + 1
    while byte(uri, rest_at) == 47 do rest_at = rest_at + 1 end
    -- set_uri raises on a control character (a client's %0D%0A, decoded in $uri): a bad request, not a 500 and
    -- a Lua stack trace in the error log per request
    if not pcall(ngx.req.set_uri, sub(best.rewrite_to, 1, -3) .. sub(uri, rest_at), false) then
      return ngx.exit(400)
    end
  end
  if app.websocket then
    local up = var.http_upgrade
    if up and up ~= "" then
      var.rproxy_upgrade = up
      var.rproxy_connection = "upgrade"
    end
  end
  ngx.ctx.rproxy_app = app
end

local function down(p)
  return cfg.max_fails > 0 and (PEERS:get(p.key) or 0) >= cfg.max_fails
end

--- balancer_by_lua of upstream rproxy_backend: round robin over the app's gears, skipping gears that failed
-- max_fails times within fail_timeout (unless all did), a retry never going to a gear already tried.
function _M.balance()
  local balancer = require "ngx.balancer"
  local ctx = ngx.ctx
  local app = ctx.rproxy_app
  if not app then return ngx.exit(500) end
  local peers = app.peers
  local n = #peers
  local st = ctx.rproxy_b
  if not st then
    st = { tried = {} }
    ctx.rproxy_b = st
    if n > 1 and cfg.tries ~= 1 then
      local more = (cfg.tries == 0 and n or math.min(n, cfg.tries)) - 1
      if more > 0 then balancer.set_more_tries(more) end
    end
  else
    local state = balancer.get_last_failure()
    if state == "failed" and st.last and cfg.max_fails > 0 then
      local c = PEERS:incr(st.last.key, 1, 0, cfg.fail_timeout)
      if c and c >= cfg.max_fails then PEERS:set(st.last.key, c, cfg.fail_timeout) end
    end
  end
  local start = rr[app.id] or math.random(n)
  local pick
  for i = 0, n - 1 do
    local p = peers[(start + i - 1) % n + 1]
    if not st.tried[p.key] and not down(p) then
      pick = p
      rr[app.id] = (start + i) % n + 1
      break
    end
  end
  if not pick then -- every gear down or tried: the next untried one, else the next one
    for i = 0, n - 1 do
      local p = peers[(start + i - 1) % n + 1]
      if not st.tried[p.key] then pick = p break end
    end
    pick = pick or peers[(start - 1) % n + 1]
    rr[app.id] = start % n + 1
  end
  st.tried[pick.key] = true
  st.last = pick
  if app.websocket then
    balancer.set_timeouts(cfg.connect_timeout, cfg.ws_timeout, cfg.ws_timeout)
  end
  local ok, err = balancer.set_current_peer(pick.host, pick.port)
  if not ok then
    ngx.log(ngx.ERR, "rproxy: set_current_peer ", pick.key, ": ", err)
    return ngx.exit(500)
  end
end

local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(json.encode(body))
  return ngx.exit(status)
end

--- content_by_lua of the apply endpoint (unix socket, root only): POST {"set": {id: app}, "delete": [id]}.
-- Every entry is checked before anything changes; 422 and nothing changed on any error.
function _M.apply()
  if ngx.req.get_method() ~= "POST" then return reply(405, { error = "POST only" }) end
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local path = ngx.req.get_body_file()
    local fh = path and io.open(path, "rb")
    body = fh and fh:read("*a")
    if fh then fh:close() end
  end
  local doc = body and json.decode(body)
  if type(doc) ~= "table" then return reply(422, { error = "the body is not a JSON object" }) end
  for k in pairs(doc) do
    if k ~= "set" and k ~= "delete" then return reply(422, { error = "unknown field " .. tostring(k):sub(1, 40) }) end
  end
  local set, delete = doc.set or {}, doc.delete or {}
  if type(set) ~= "table" or (next(set) ~= nil and is_list(set)) then return reply(422, { error = "set must be an object" }) end
  if not is_list(delete) then return reply(422, { error = "delete must be a list" }) end
  local nset = 0
  for id, rec in pairs(set) do
    local err = check_app(id, rec)
    if err then return reply(422, { error = err }) end
    nset = nset + 1
  end
  for _, id in ipairs(delete) do
    if not matches(id, ID_RE, 64) then return reply(422, { error = "bad app id in delete" }) end
    if set[id] then return reply(422, { error = "app " .. id .. " is both set and deleted" }) end
  end
  local ok, err = commit(set, delete)
  if not ok then return reply(507, { error = err }) end
  return reply(200, { set = nset, deleted = #delete, generation = ROUTES:get("gen") })
end

return _M

// Package netfault breaks the network under a process at L4: named TCP proxies
// (toxiproxy's, run as a library in process) sit in front of its dependencies, and toxics
// and outages set on them through the admin API slow, throttle, cut and refuse the bytes.
// Where chaos/faults fails calls inside the kit, netfault fails what the kit cannot see:
// the connection itself, for every client library alike (gRPC, Redis, PostgreSQL, NATS).
//
// Wire it up once per process:
//
//	px := netfault.New(netfault.WithLogger(logger))
//	defer px.Close()
//	p, err := px.Add("redis", "", "10.0.0.5:6379") // listens on a free loopback port
//	// dial p.Listen instead of 10.0.0.5:6379
//	px.Register(adminServer) // the admin API below
//
// services/stack does this for `redline up` when chaos.net.enabled is on: a proxy per gRPC
// server, named after its service, whose address the registry hands out, and one per
// external store (redis, postgres, nats).
//
// # Toxics
//
// A toxic is a ToxicSpec, in JSON for the admin API (YAML keys are the same). Durations
// are strings such as "250ms".
//
//   - proxy: the proxy's name. Required.
//   - type: latency, bandwidth, reset_peer, timeout, slicer or limit_data. Required.
//   - stream: downstream (bytes from the upstream back to the client; the default) or
//     upstream (from the client to the upstream).
//   - toxicity: the share of connections hit, in (0, 1]; omitted means 1. Each
//     connection draws when it opens or when the toxic is added, not per byte.
//   - attributes: the type's settings, below. Each type refuses the others'.
//   - ttl: the toxic's life; DefaultTTL (5m) when omitted, at most MaxTTL (1h unless
//     WithMaxTTL says otherwise).
//   - id ([a-z0-9-]{1,40}, random when omitted) and reason (free text).
//
// The types and their attributes:
//
//   - latency: every chunk waits latency (> 0), varied uniformly by ± jitter. Whole
//     milliseconds.
//   - bandwidth: at most rate KB/s (> 0).
//   - reset_peer: the connection is reset (TCP RST) timeout after its first bytes (0: at
//     once). Connections that opened before the toxic was added are closed rather than
//     reset, since the library sets SO_LINGER only when a connection opens.
//   - timeout: bytes are swallowed; the connection is closed after timeout, or held until
//     the toxic goes when timeout is 0. Removing it closes the connections it held.
//   - slicer: bytes go out in slices of average_size (> 0) ± size_variation bytes, delay
//     (whole microseconds) apart.
//   - limit_data: the connection is closed after bytes (> 0) bytes.
//
// Durations are at most MaxDuration (1h). At most MaxToxics toxics are active at once.
//
// Examples, as bodies of POST /chaos/net/toxics:
//
//	{"proxy": "redis", "type": "latency", "attributes": {"latency": "200ms", "jitter": "50ms"}, "ttl": "10m", "reason": "drill 7"}
//	{"proxy": "note", "type": "bandwidth", "stream": "downstream", "attributes": {"rate": 16}}
//	{"proxy": "postgres", "type": "reset_peer", "toxicity": 0.2, "attributes": {"timeout": "100ms"}}
//	{"proxy": "nats", "type": "timeout", "stream": "upstream", "attributes": {"timeout": "0s"}, "ttl": "2m"}
//	{"proxy": "search", "type": "limit_data", "attributes": {"bytes": 1024}}
//
// ParseToxic decodes and validates JSON strictly; ToxicSpec.Validate checks a spec on its
// own. Errors are InvalidArgument with reason BAD_NET_FAULT, and the message and metadata
// "field" name the field ("attributes.latency", "toxicity", ...). An unknown proxy is a
// bad "proxy".
//
// # Outages
//
// Disable takes a proxy away, as if its dependency went down: it stops accepting, so
// dials are refused, and it drops every open connection. The outage ends at its ttl
// (OutageSpec; the same default and bound as toxics), with Enable, or with Reset; then the
// proxy listens on the same address again. Toxics stay on a disabled proxy and act again
// after.
//
// # Expiry
//
// Every toxic and outage expires, so a forgotten drill ends itself. Sweep removes expired
// toxics from their proxies and ends expired outages by the clock (WithClock). A
// background goroutine sweeps every second (WithSweepInterval) until Close, and List and
// every change sweep first, so an expired toxic is gone from the proxy within a second
// even when nobody calls the API.
//
// # Admin API
//
// Register adds, to the admin server:
//
//	GET    /chaos/net                         the proxies: {"proxies": [...]}, with upstream, listen, enabled, outage and toxics
//	POST   /chaos/net/toxics                  add one (a ToxicSpec, at most 64 KiB): 201 with the Toxic; 400 naming the field
//	DELETE /chaos/net/toxics/{id}             remove one: {"removed": 1}; 404 if it is not active
//	POST   /chaos/net/proxies/{name}/disable  an outage, body optional: {"ttl": "30s", "reason": "..."}; 200 with the proxy
//	POST   /chaos/net/proxies/{name}/enable   end the outage; 200 with the proxy
//	DELETE /chaos/net                         the big red button: every toxic removed, every proxy enabled
//
// # Metrics
//
// redline_chaos_net_toxics_active is the number of toxics active now, and
// redline_chaos_net_toxics_total{proxy,type} counts the toxics added.
package netfault

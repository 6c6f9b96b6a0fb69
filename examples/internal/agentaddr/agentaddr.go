// Package agentaddr is where keepslotd listens unless told otherwise, the
// one definition that keepslotd's -listen and keepslotctl's -t share.
package agentaddr

// Port is keepslotd's default port; keepslotctl assumes it when -t names a
// host only.
const Port = "7443"

// Listen is keepslotd's default address: the loopback interface only, so
// that an agent started without -listen is not reachable from elsewhere.
const Listen = "127.0.0.1:" + Port

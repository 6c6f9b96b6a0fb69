package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/keepslot/keepslot/backup"
	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/examples/internal/agentaddr"
)

// options are the agent's flags.
type options struct {
	data, uri, listen string
	tlsCert, tlsKey   string
	secrets           string
	kdfLogN           uint
	oplog             backup.Toggle
	opTimeout         time.Duration
	export            exportFlags
	pitr              pitrFlags
	timeouts          timeouts
	schedule          scheduleFlags
	drillURI          string
	notifyURL         string
}

// errUsage: the command line is not one the agent runs with; parseFlags
// has said why on its output.
var errUsage = errors.New("usage")

// parseFlags reads the agent's command line, args without the program's
// name. On a command line the agent cannot run with, it writes what is
// wrong, then the usage, to output, and returns an error: errUsage, or
// flag.ErrHelp for -help.
func parseFlags(args []string, output io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("keepslotd", flag.ContinueOnError)
	fs.SetOutput(output)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return o, err // the flag package has printed it, with the usage
	}
	if err := o.check(fs.Args()); err != nil {
		fmt.Fprintf(output, "keepslotd: %v\n", err)
		fs.Usage()
		return o, errUsage
	}
	return o, nil
}

// register defines the agent's flags on fs.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.data, "data", "keepslotd-data", "the agent's data directory")
	fs.StringVar(&o.uri, "uri", "", "MongoDB URI (default: an embedded server with its data in DATA/db)")
	fs.StringVar(&o.listen, "listen", agentaddr.Listen, "address to listen on")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "TLS certificate file (with -tls-key: serve HTTPS)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "TLS key file")
	fs.StringVar(&o.secrets, "secrets", "", "comma-separated files and directories for the sensitive backup (default DATA/secrets)")
	fs.UintVar(&o.kdfLogN, "kdf-log-n", cipher.DefaultLogN, "scrypt cost 2^N of the key derivation")
	fs.DurationVar(&o.opTimeout, "operation-timeout", conn.DefaultOperationTimeout, "the longest a backup waits for MongoDB to answer one request (a cursor's batch, a command) before it fails as unreachable")
	fs.TextVar(&o.oplog, "oplog", backup.ToggleAuto, "capture the oplog with each backup, for a point-in-time restore: auto (where the server keeps one), on (refuse a server without one) or off")
	fs.DurationVar(&o.timeouts.Read, "read-timeout", defaultTimeouts.Read, "the longest a client may take to send a request, headers and body")
	fs.DurationVar(&o.timeouts.Write, "write-timeout", defaultTimeouts.Write, "the longest a write to a client may stall (a download may take longer in all, as long as it moves)")
	fs.DurationVar(&o.timeouts.Idle, "idle-timeout", defaultTimeouts.Idle, "the longest a kept-alive connection may wait for its next request")
	o.export.register(fs)
	o.pitr.register(fs)
	o.schedule.register(fs)
	fs.StringVar(&o.drillURI, "drill-uri", "", "restore drills go to this scratch MongoDB server (default: an embedded server in DATA/drill, started for each drill); never the node backed up")
	fs.StringVar(&o.notifyURL, "notify-url", "", "post a JSON event to this URL on each failed scheduled run or drill, and on recovery")
}

// check says what is wrong with the flags, or with the arguments left
// after them, that parsing alone does not catch.
func (o options) check(args []string) error {
	switch {
	case len(args) > 0:
		return fmt.Errorf("unexpected argument %q: keepslotd takes flags only", args[0])
	case (o.tlsCert == "") != (o.tlsKey == ""):
		return fmt.Errorf("-tls-cert and -tls-key go together: give both to serve HTTPS, or neither")
	case o.kdfLogN < 1 || o.kdfLogN > maxKDFLogN:
		return fmt.Errorf("-kdf-log-n %d is outside 1..%d: a backup's key derivation may cost at most 2^%d (15, the default, unless a test needs it lower)",
			o.kdfLogN, maxKDFLogN, maxKDFLogN)
	}
	for _, t := range []struct {
		flag string
		d    time.Duration
	}{
		{"read-timeout", o.timeouts.Read}, {"write-timeout", o.timeouts.Write},
		{"idle-timeout", o.timeouts.Idle}, {"operation-timeout", o.opTimeout},
	} {
		if t.d <= 0 {
			return fmt.Errorf("-%s must be positive; got %s", t.flag, t.d)
		}
	}
	return nil
}

// The agent's scrypt parameters besides N, cipher's defaults (see
// -kdf-log-n in the package documentation).
const kdfR, kdfP = 8, 4

// maxKDFLogN is the highest -kdf-log-n a backup accepts, 18: cipher
// refuses a cost N·r·p above cipher.DefaultMaxWork.
var maxKDFLogN = func() uint {
	n := uint(1)
	for uint64(1)<<(n+1)*kdfR*kdfP <= cipher.DefaultMaxWork {
		n++
	}
	return n
}()

// source is the MongoDB source of the agent's main backup.
func (o options) source(uri string) *backup.Source {
	return &backup.Source{Conn: conn.Config{URI: uri, OperationTimeout: o.opTimeout}, Oplog: o.oplog}
}

// kdf is the key derivation's cost for the agent's backups.
func (o options) kdf() *cipher.Options {
	return &cipher.Options{LogN: uint8(o.kdfLogN)}
}

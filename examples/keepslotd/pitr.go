package main

import (
	"context"
	"encoding"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	mopts "go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/examples/internal/secretfile"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// pitrFlags configure point-in-time recovery: the oplog sliced to the
// export's bucket, beside the backups.
type pitrFlags struct {
	on           bool
	interval     time.Duration
	maxMiB       int64
	passwordFile string
	keyFile      string
	read         readMode
}

// readMode is -pitr-read's value.
type readMode pitr.ReadMode

var _ encoding.TextUnmarshaler = (*readMode)(nil)

func (m readMode) MarshalText() ([]byte, error) { return []byte(pitr.ReadMode(m).String()), nil }

func (m *readMode) UnmarshalText(b []byte) error {
	for _, r := range []pitr.ReadMode{pitr.ReadAuto, pitr.ReadTail, pitr.ReadPoll} {
		if r.String() == string(b) {
			*m = readMode(r)
			return nil
		}
	}
	return fmt.Errorf("%q is not auto, tail or poll", b)
}

func (f *pitrFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.on, "pitr", false, "point-in-time recovery: copy the oplog, in slices, to the export's bucket (needs -export-bucket and -pitr-password-file or -pitr-key-file)")
	fs.DurationVar(&f.interval, "pitr-interval", pitr.DefaultInterval, "how long an oplog slice stays open: a write is in the bucket about this long after it was made")
	fs.Int64Var(&f.maxMiB, "pitr-max-mib", pitr.DefaultMaxSize>>20, "close a slice early once it holds this many MiB of entries (memory used: about this)")
	fs.StringVar(&f.passwordFile, "pitr-password-file", "", "a 0600 file whose first line is the backups' password, which the slices are encrypted with")
	fs.StringVar(&f.keyFile, "pitr-key-file", "", "a 0600 file holding a key derived from the backups' password (keepslotctl pitr-key): unlike the password, it opens the slices only")
	fs.TextVar(&f.read, "pitr-read", readMode(pitr.ReadAuto), "how to read the oplog: auto (a tailable cursor; polling on FerretDB), tail or poll")
}

// errPITR: the point-in-time settings cannot work; the message says why.
var errPITR = errcode.New(errcode.Invalid, "unusable point-in-time settings")

// key checks f and returns the slices' key, or nil without -pitr. It comes
// from the password or key file, which must be 0600; the password's key is
// derived once, here, with kdf.
func (f pitrFlags) key(exporting bool, kdf *cipher.Options) (*cipher.Key, error) {
	if !f.on {
		if f.passwordFile != "" || f.keyFile != "" {
			return nil, fmt.Errorf("%w: -pitr-password-file and -pitr-key-file need -pitr", errPITR)
		}
		return nil, nil
	}
	if !exporting {
		return nil, fmt.Errorf("%w: -pitr needs -export-bucket: the oplog slices go to the bucket, beside the exported backups", errPITR)
	}
	switch {
	case (f.passwordFile == "") == (f.keyFile == ""):
		return nil, fmt.Errorf("%w: -pitr needs one of -pitr-password-file and -pitr-key-file: the slices are encrypted, and no one types a password every minute", errPITR)
	case f.passwordFile != "":
		b, err := readSecret(f.passwordFile)
		if err != nil {
			return nil, err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		clear(b)
		key, err := cipher.NewKey([]byte(strings.TrimSuffix(line, "\r")), kdf)
		if err != nil {
			return nil, fmt.Errorf("%w: the password in %s: %w", errPITR, f.passwordFile, err)
		}
		return key, nil
	default:
		b, err := readSecret(f.keyFile)
		if err != nil {
			return nil, err
		}
		key := new(cipher.Key)
		err = key.UnmarshalBinary(b)
		clear(b)
		if err != nil {
			return nil, fmt.Errorf("%w: %s holds no key; make one with keepslotctl pitr-key: %w", errPITR, f.keyFile, err)
		}
		return key, nil
	}
}

// slicer returns the oplog slicer that f configures with key, or nil
// without -pitr.
func (f pitrFlags) slicer(uri string, export *slot.ExportConfig, key *cipher.Key, opTimeout time.Duration, log *slog.Logger) (*pitr.Slicer, error) {
	if key == nil {
		return nil, nil
	}
	// A key derived from the password file is new at each start: the
	// password's keyring opens the slices of the agent before, to resume
	// after them.
	var ring *cipher.Keyring
	if f.passwordFile != "" {
		b, err := readSecret(f.passwordFile)
		if err != nil {
			return nil, err
		}
		line, _, _ := strings.Cut(string(b), "\n")
		clear(b)
		ring = cipher.NewKeyring([]byte(strings.TrimSuffix(line, "\r")), nil)
	}
	return pitr.New(pitr.Config{
		Conn: conn.Config{URI: uri, OperationTimeout: opTimeout}, Location: pitrLocation(*export), Key: key, Keyring: ring,
		Interval: f.interval, MaxSize: f.maxMiB << 20, Read: pitr.ReadMode(f.read),
		Logger: log,
	})
}

// pitrLocation is where export puts the node's backups, beside which the
// slices go.
func pitrLocation(export slot.ExportConfig) pitr.Location {
	return pitr.Location{Remote: export.Remote, Prefix: export.Prefix, Node: export.Node}
}

// readSecret reads a file that holds a secret with secretfile.Read: a
// regular file, not a link, of its owner's only, of at most 4 KiB, opened
// without blocking (a FIFO is refused at once, not waited on).
func readSecret(file string) ([]byte, error) {
	b, err := secretfile.Read(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errPITR, err)
	}
	return b, nil
}

// ensureOplog gives the embedded server an oplog, which it keeps only once
// local.oplog.rs exists, so that -pitr has one to slice (and backups
// capture it).
func ensureOplog(ctx context.Context, uri string) error {
	c, err := mongo.Connect(mopts.Client().ApplyURI(uri))
	if err != nil {
		return err
	}
	defer c.Disconnect(context.WithoutCancel(ctx))
	local := c.Database("local")
	names, err := local.ListCollectionNames(ctx, bson.D{{Key: "name", Value: "oplog.rs"}})
	if err != nil || len(names) > 0 {
		return err
	}
	return local.CreateCollection(ctx, "oplog.rs", mopts.CreateCollection().SetCapped(true).SetSizeInBytes(64<<20))
}

// runPruner deletes, every interval until ctx is done, the slices that no
// backup on the bucket needs any longer, once the backups' retention has
// run (dryRun: logs what it would delete).
func runPruner(ctx context.Context, export slot.ExportConfig, every time.Duration, dryRun bool, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		res, err := pitr.Prune(ctx, pitrLocation(export), dryRun)
		if err != nil {
			log.Error("pitr: pruning the slices failed", "error", err)
			continue
		}
		log.Info("pitr: slices pruned", "kept", len(res.Keep), "deleted", len(res.Delete), "dry_run", res.DryRun)
	}
}

// pitrHandler serves point-in-time recovery:
//
//	GET  /v1/pitr               -> {"node":…,"status":{…},"coverage":{…}}: the slicer's state, and
//	                               the windows a restore reaches, the gaps, the slices and base backups
//	GET  /v1/pitr/objects       -> {"node":…,"entries":[…]}: what the bucket holds under the node's
//	                               prefix, backups and slices, with their metadata (for keepslotctl's restore)
//	GET  /v1/pitr/slices/{name} the slice, encrypted, with Range support; 400 for a name that
//	                               cannot be a slice's (a control character, a slash, too long)
//	POST /v1/pitr/flush         closes the open slice and stores it -> {"message":…,"slice":{…}}
type pitrHandler struct {
	export slot.ExportConfig
	slicer *pitr.Slicer // nil without -pitr
}

func registerPITR(mux *http.ServeMux, export *slot.ExportConfig, slicer *pitr.Slicer) {
	if export == nil {
		return
	}
	h := pitrHandler{export: *export, slicer: slicer}
	mux.HandleFunc("GET /v1/pitr", h.get)
	mux.HandleFunc("GET /v1/pitr/objects", h.objects)
	mux.HandleFunc("GET /v1/pitr/slices/{name}", h.slice)
	mux.HandleFunc("POST /v1/pitr/flush", h.flush)
}

// pitrResponse is GET /v1/pitr's answer.
type pitrResponse struct {
	Node     string         `json:"node"`
	Status   *pitr.Status   `json:"status,omitempty"` // nil when the agent does not slice (no -pitr)
	Coverage *pitr.Coverage `json:"coverage"`
}

func (h pitrHandler) get(w http.ResponseWriter, r *http.Request) {
	prefix, err := h.export.NodePrefix()
	if err != nil {
		writeErr(w, err)
		return
	}
	cov, err := pitr.Scan(r.Context(), pitrLocation(h.export))
	if err != nil {
		writeErr(w, err)
		return
	}
	resp := pitrResponse{Node: prefix, Coverage: cov}
	if h.slicer != nil {
		st := h.slicer.Status()
		resp.Status = &st
	}
	writeJSON(w, http.StatusOK, resp)
}

type objectsResponse struct {
	Node    string        `json:"node"`
	Entries []store.Entry `json:"entries"`
}

func (h pitrHandler) objects(w http.ResponseWriter, r *http.Request) {
	prefix, err := h.export.NodePrefix()
	if err != nil {
		writeErr(w, err)
		return
	}
	entries, err := h.export.Remote.List(r.Context(), prefix)
	if err != nil {
		writeErr(w, err)
		return
	}
	if entries == nil {
		entries = []store.Entry{}
	}
	writeJSON(w, http.StatusOK, objectsResponse{Node: prefix, Entries: entries})
}

func (h pitrHandler) slice(w http.ResponseWriter, r *http.Request) {
	prefix, err := h.export.NodePrefix()
	if err != nil {
		writeErr(w, err)
		return
	}
	name := r.PathValue("name")
	if why := badSliceName(name); why != "" {
		writeError(w, http.StatusBadRequest, "bad_request",
			fmt.Sprintf("%s is not a slice's name: %s; GET /v1/pitr lists the slices", echo(name), why))
		return
	}
	obj, err := h.export.Remote.Open(r.Context(), path.Join(prefix, pitr.Folder, name))
	if err != nil {
		writeErr(w, err)
		return
	}
	defer obj.Close()
	info := obj.Info()
	w.Header().Set("Content-Type", "application/octet-stream")
	if info.MD5 != "" {
		w.Header().Set("ETag", `"`+info.MD5+`"`)
	}
	capRanges(r)
	http.ServeContent(w, r, "", info.Created, obj)
}

// badSliceName says why name cannot be a slice's name (one segment of at
// most store.MaxNameLen bytes of UTF-8, without control characters), or
// returns "". The bucket is not asked for such a name: S3 servers refuse
// some of them with errors of their own.
func badSliceName(name string) string {
	switch {
	case name == "" || name == "." || name == "..":
		return "it is empty, . or .."
	case strings.ContainsAny(name, "/\\"):
		return "it holds a slash or a backslash"
	case len(name) > store.MaxNameLen:
		return fmt.Sprintf("it is longer than %d bytes", store.MaxNameLen)
	case !utf8.ValidString(name):
		return "it is not UTF-8"
	case strings.ContainsFunc(name, unicode.IsControl):
		return "it holds a control character (such as NUL)"
	}
	return ""
}

// flushResponse is POST /v1/pitr/flush's answer.
type flushResponse struct {
	Message string     `json:"message"`
	Slice   pitr.Slice `json:"slice"`
}

// flushTimeout bounds a flush: a slicer that cannot store its slice says
// why in its status meanwhile.
const flushTimeout = time.Minute

func (h pitrHandler) flush(w http.ResponseWriter, r *http.Request) {
	if h.slicer == nil {
		writeErr(w, fmt.Errorf("%w: the agent does not slice the oplog; start keepslotd with -pitr", errPITR))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), flushTimeout)
	defer cancel()
	sl, err := h.slicer.Flush(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		// The slicer did not answer in time: its last failure, with its
		// code, says why (a server that does not answer is unreachable
		// once the operation timeout passes).
		st := h.slicer.Status()
		cause := error(context.DeadlineExceeded)
		if st.Code != "" {
			cause = errcode.New(st.Code, "the slicer's last attempt failed")
		}
		last := st.Error
		if last == "" {
			last = "none yet; it is still trying (see GET /v1/pitr)"
		}
		err = fmt.Errorf("%w: no slice was stored within %s; the slicer's last failure: %s", cause, flushTimeout, last)
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, flushResponse{Message: "Slice stored: " + sl.Key, Slice: sl})
}

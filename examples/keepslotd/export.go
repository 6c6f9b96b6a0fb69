package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
	"github.com/keepslot/keepslot/store/s3store"
)

// exportFlags configure the export of backups to an S3-compatible bucket.
// The credentials come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or
// ~/.aws/credentials), never from a flag, so they stay out of ps and logs.
type exportFlags struct {
	endpoint, bucket, prefix, node, region string
	insecure, dryRun                       bool
	partMiB                                int64
	last, daily, weekly, monthly           int
}

func (f *exportFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.bucket, "export-bucket", "", "export each backup, once ready, to this S3 bucket (credentials: $AWS_ACCESS_KEY_ID, $AWS_SECRET_ACCESS_KEY)")
	fs.StringVar(&f.endpoint, "export-endpoint", "s3.amazonaws.com", "the S3 endpoint, host[:port]")
	fs.BoolVar(&f.insecure, "export-insecure", false, "speak plain HTTP to the S3 endpoint (a server on this host or network only)")
	fs.StringVar(&f.region, "export-region", "", "the bucket's region (default: asked of the server)")
	fs.StringVar(&f.prefix, "export-prefix", "keepslot", "the key prefix: copies go to PREFIX/NODE/NAME")
	fs.StringVar(&f.node, "export-node", "", "this node's name in the keys (default: the host name)")
	fs.Int64Var(&f.partMiB, "export-part-mib", 16, "the multipart upload's part size in MiB (memory used: twice this)")
	fs.IntVar(&f.last, "export-keep-last", 0, "retention: keep the newest N copies of this node (0: no rule)")
	fs.IntVar(&f.daily, "export-keep-daily", 0, "retention: keep the newest copy of each of the last N days")
	fs.IntVar(&f.weekly, "export-keep-weekly", 0, "retention: keep the newest copy of each of the last N weeks")
	fs.IntVar(&f.monthly, "export-keep-monthly", 0, "retention: keep the newest copy of each of the last N months")
	fs.BoolVar(&f.dryRun, "export-retention-dry-run", false, "retention: log what would be deleted, delete nothing")
}

// export returns the backupper's export settings, or nil without
// -export-bucket.
func (f exportFlags) export(ctx context.Context, log *slog.Logger) (*slot.ExportConfig, error) {
	if f.bucket == "" {
		return nil, nil
	}
	cfg := s3store.Config{
		Endpoint: f.endpoint, Insecure: f.insecure, Region: f.region,
		Bucket: f.bucket, Prefix: f.prefix, PartSize: f.partMiB << 20,
	}
	remote, err := s3store.NewRemote(cfg)
	if err != nil {
		return nil, err
	}
	// A remote that cannot be reached now may be later: say so, go on.
	if err := remote.Check(ctx); err != nil {
		log.Error("export: the bucket is not usable now; exports will fail until it is", "remote", cfg, "error", err)
	} else {
		log.Info("export: backups are copied to the bucket once ready", "remote", cfg)
	}
	e := &slot.ExportConfig{Remote: remote, Node: f.node}
	if f.last > 0 || f.daily > 0 || f.weekly > 0 || f.monthly > 0 {
		e.Retention = &store.Retention{Last: f.last, Daily: f.daily, Weekly: f.weekly, Monthly: f.monthly, DryRun: f.dryRun}
	}
	return e, nil
}

// exportHandler serves the main backup's export verbs:
//
//	POST /v1/backup/export         -> 202 {"message":"Export in progress."}; GET /v1/backup shows it
//	GET  /v1/backup/remote         -> {"backups":[{"key":…,"info":{…}}…]}, this node's copies, oldest first
//	GET  /v1/backup/remote/{name}  the copy, encrypted, with Range support (at most maxRanges ranges); ETag and X-Content-MD5 carry its md5
type exportHandler struct{ e slot.Exporter }

func registerExport(mux *http.ServeMux, b slot.Backupper) {
	e, ok := b.(slot.Exporter)
	if !ok {
		return
	}
	h := exportHandler{e}
	mux.HandleFunc("POST /v1/backup/export", h.export)
	mux.HandleFunc("GET /v1/backup/remote", h.list)
	mux.HandleFunc("GET /v1/backup/remote/{name}", h.file)
}

func (h exportHandler) export(w http.ResponseWriter, r *http.Request) {
	if err := h.e.Export(r.Context()); err != nil {
		writeErr(w, notConfigured(err))
		return
	}
	writeJSON(w, http.StatusAccepted, message{"Export in progress."})
}

type remoteList struct {
	Backups []store.Entry `json:"backups"`
}

func (h exportHandler) list(w http.ResponseWriter, r *http.Request) {
	l, err := h.e.RemoteList(r.Context())
	if err != nil {
		writeErr(w, notConfigured(err))
		return
	}
	if l == nil {
		l = []store.Entry{}
	}
	writeJSON(w, http.StatusOK, remoteList{l})
}

func (h exportHandler) file(w http.ResponseWriter, r *http.Request) {
	obj, err := h.e.OpenRemote(r.Context(), r.PathValue("name"))
	if err != nil {
		writeErr(w, notConfigured(err))
		return
	}
	defer obj.Close()
	info := obj.Info()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+retrievedName+`"`)
	if info.MD5 != "" {
		w.Header().Set("ETag", `"`+info.MD5+`"`)
		w.Header().Set("X-Content-MD5", info.MD5)
	}
	w.Header().Set("X-Backup-Name", info.Name)
	capRanges(r)
	http.ServeContent(w, r, "", info.Created, obj)
}

// notConfigured adds the agent's flag to the library's "no remote" error.
func notConfigured(err error) error {
	if errcode.Of(err) == errcode.Invalid {
		return fmt.Errorf("%w; start keepslotd with -export-bucket (and -export-endpoint) to export", err)
	}
	return err
}

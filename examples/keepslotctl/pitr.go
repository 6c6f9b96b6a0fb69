package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/cipher"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/store"
)

// The verbs of point-in-time recovery, for an agent that slices the
// oplog (keepslotd -pitr).

// pitrInfo is the agent's GET /v1/pitr answer.
type pitrInfo struct {
	Node     string         `json:"node"`
	Status   *pitr.Status   `json:"status,omitempty"`
	Coverage *pitr.Coverage `json:"coverage"`
}

// pitrInfo asks the agent what its bucket holds for point-in-time
// restores; ok is false for an agent that does not export (nothing to
// say).
func (a *app) pitrInfo(ctx context.Context) (info pitrInfo, raw []byte, ok bool, err error) {
	raw, err = a.ask(ctx, http.MethodGet, "/v1/pitr", nil, &info)
	var ae *apiError
	if errors.As(err, &ae) && (ae.Status == http.StatusNotFound && ae.Code == "not_found") {
		return info, nil, false, nil
	}
	return info, raw, err == nil, err
}

// pitrLines describes the restorable windows, the lag and the gaps.
func pitrLines(info pitrInfo) []string {
	cov := info.Coverage
	if cov == nil {
		return nil
	}
	lag := fmt.Sprintf("lag %s", cov.Lag(time.Now()).Round(time.Second))
	var lines []string
	for i, w := range cov.Windows {
		l := "restorable " + w.String()
		if i == len(cov.Windows)-1 && w.Until == cov.Until {
			l += ", " + lag
		}
		lines = append(lines, l)
	}
	if len(cov.Windows) == 0 {
		lines = append(lines, "no restorable window: the bucket needs a backup that captured the oplog, and slices after it")
	}
	for _, g := range cov.Gaps {
		lines = append(lines, "gap "+g.String())
	}
	if st := info.Status; st != nil && st.Error != "" {
		lines = append(lines, "the slicer's last attempt failed ("+string(st.Code)+"): "+st.Error)
	}
	return lines
}

func (a *app) pitrFlushCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pitr-flush",
		Short: "Close the node's open oplog slice and store it now (keepslotd -pitr)",
		Long: "Close the node's open oplog slice and store it in the bucket now, so that a restore\n" +
			"reaches every write made before: before a planned restore, say.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.tell(cmd, http.MethodPost, "/v1/pitr/flush", nil)
		},
	}
}

func (a *app) pitrKeyCmd() *cobra.Command {
	var pw passwordFlags
	var out string
	var logN uint8
	cmd := &cobra.Command{
		Use:   "pitr-key -o FILE",
		Short: "Derive the key that keepslotd -pitr-key-file encrypts the oplog slices with, from the backups' password",
		Long: "Derive, from the backups' password, a key that encrypts oplog slices, and write it to\n" +
			"a new file, 0600, for keepslotd -pitr-key-file. The key opens the slices written under it\n" +
			"and nothing else, and does not reveal the password: a stolen key file exposes the oplog\n" +
			"slices, not the backups. A restore opens the slices with the password.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageErrorf("name the key file to write with -o FILE")
			}
			password, err := pw.read(true)
			if err != nil {
				return err
			}
			key, err := cipher.NewKey(password, &cipher.Options{LogN: logN})
			if err != nil {
				return withCode(exitUsage, err)
			}
			b, err := key.MarshalBinary()
			if err != nil {
				return err
			}
			f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return withCode(exitUsage, fmt.Errorf("create the key file: %w (it is never overwritten)", err))
			}
			if _, err := f.Write(b); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Key written to %s (0600); start keepslotd with -pitr -pitr-key-file %s.\n", out, out)
			return nil
		},
	}
	pw.add(cmd)
	cmd.Flags().StringVarP(&out, "output", "o", "", "the key file to create (0600)")
	cmd.Flags().Uint8Var(&logN, "kdf-log-n", cipher.DefaultLogN, "scrypt cost 2^N of the key's derivation (paid once here, and once by a restore)")
	return cmd
}

// parseTarget reads --to-time: an RFC 3339 time, restored as of the end of
// its second, or SECONDS[:ORDINAL], the oplog up to, not including, that
// timestamp.
func parseTarget(s string) (time.Time, bson.Timestamp, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, bson.Timestamp{}, nil
	}
	ts, err := pitr.ParseTimestamp(s)
	if err != nil || ts.IsZero() {
		return time.Time{}, bson.Timestamp{}, fmt.Errorf("%q is neither a time such as 2026-12-02T17:59:00Z nor SECONDS[:ORDINAL]", s)
	}
	return time.Time{}, ts, nil
}

// restoreToTime restores the node's bucket's backups and oplog slices, read
// through the agent, to --to-time.
func (a *app) restoreToTime(cmd *cobra.Command, f restoreFlags, opts *restore.Options) error {
	at, ts, err := parseTarget(f.toTime)
	if err != nil {
		return usageErrorf("--to-time: %v", err)
	}
	password, err := f.pw.read(false)
	if err != nil {
		return err
	}
	c, err := a.client()
	if err != nil {
		return err
	}
	removed, err := removeStale("")
	for _, d := range removed {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: removed %s, the encrypted objects of a restore --to-time that was killed\n", d)
	}
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "keepslotctl: warning: a restore --to-time that was killed left files behind: %v\n", err)
	}
	dir, release, err := pitrTempDir("")
	if err != nil {
		return err
	}
	defer release()
	remote := &agentRemote{c: c, dir: dir, infos: map[string]store.Info{}}
	node, err := remote.node(cmd.Context())
	if err != nil {
		return err
	}
	prefix, name := path.Split(strings.TrimSuffix(node, "/"))
	rep, err := pitr.Restore(cmd.Context(), pitr.Location{Remote: remote, Prefix: prefix, Node: name}, password,
		&pitr.RestoreOptions{Restore: *opts, Time: at, Timestamp: ts, TempDir: dir})
	if err != nil {
		return restoreError(err)
	}
	if a.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		return nil
	}
	verb := "Restored"
	if rep.Restore.DryRun {
		verb = "Dry run: would restore"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %s (consistent as of %s), then %d oplog slices, up to %s (%d:%d, not included).\n",
		verb, path.Base(rep.Base.Key), rep.Base.Point().Format(time.RFC3339), len(rep.Slices),
		time.Unix(int64(rep.Limit.T), 0).UTC().Format(time.RFC3339), rep.Limit.T, rep.Limit.I)
	for _, s := range rep.Slices {
		fmt.Fprintf(cmd.OutOrStdout(), "  slice %s\t%d entries\n", path.Base(s.Key), s.Entries)
	}
	printReport(cmd, rep.Restore)
	return nil
}

// renames turns --ns-from/--ns-to into renames.
func renames(f restoreFlags) namespace.Renames {
	var rs namespace.Renames
	for i := range f.nsFrom {
		rs = append(rs, namespace.Rename{From: f.nsFrom[i], To: f.nsTo[i]})
	}
	return rs
}

// agentRemote is a read-only store.Remote of the node's objects in its
// bucket, through the agent: what pitr.Restore reads. An object opened is
// downloaded into dir first.
type agentRemote struct {
	c     *client
	dir   string
	pfx   string                // the node's prefix, as the agent says
	infos map[string]store.Info // of the objects listed
}

// node asks the agent for the node's prefix, and lists its objects.
func (r *agentRemote) node(ctx context.Context) (string, error) {
	if _, err := r.List(ctx, ""); err != nil {
		return "", err
	}
	return r.pfx, nil
}

// List implements store.Remote.
func (r *agentRemote) List(ctx context.Context, prefix string) ([]store.Entry, error) {
	var l struct {
		Node    string        `json:"node"`
		Entries []store.Entry `json:"entries"`
	}
	if _, err := r.c.call(ctx, http.MethodGet, "/v1/pitr/objects", nil, &l); err != nil {
		return nil, notExporting(err)
	}
	r.pfx = l.Node
	var out []store.Entry
	for _, e := range l.Entries {
		r.infos[e.Key] = e.Info
		if strings.HasPrefix(e.Key, prefix) {
			out = append(out, e)
		}
	}
	return out, nil
}

// Open implements store.Remote: it downloads the object, a backup's copy
// or a slice, and checks its size.
func (r *agentRemote) Open(ctx context.Context, key string) (store.Object, error) {
	info, ok := r.infos[key]
	rel, under := strings.CutPrefix(key, r.pfx)
	if !ok || !under {
		return nil, fmt.Errorf("%w: %s", store.ErrNotFound, key)
	}
	p := "/v1/backup/remote/" + url.PathEscape(rel)
	if name, slice := strings.CutPrefix(rel, pitr.Folder); slice {
		p = "/v1/pitr/slices/" + url.PathEscape(name)
	}
	resp, err := r.c.request(ctx, http.MethodGet, p, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	f, err := os.CreateTemp(r.dir, "object-*")
	if err != nil {
		return nil, err
	}
	n, err := copyAnnounced(f, resp.Body, resp.ContentLength, 0, info.Size, key, f.Name())
	switch {
	case err != nil && !errors.Is(err, store.ErrMismatch):
		err = unreachablef("the download of %s from the agent at %s broke off after %d of its %d bytes: %v; check that keepslotd runs, and restore again", key, r.c.base, n, info.Size, err)
	case err == nil && n != info.Size:
		err = corruptf("%s: %d bytes received, %d stored", key, n, info.Size)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return &fileObject{File: f, info: info}, nil
}

// Put implements store.Remote; the agent's bucket is read-only here.
func (r *agentRemote) Put(context.Context, string, io.Reader, store.Info) (store.Info, error) {
	return store.Info{}, fmt.Errorf("%w: keepslotctl reads the bucket only", store.ErrInvalid)
}

// Delete implements store.Remote; the agent's bucket is read-only here.
func (r *agentRemote) Delete(context.Context, string) error {
	return fmt.Errorf("%w: keepslotctl reads the bucket only", store.ErrInvalid)
}

// fileObject is a downloaded object, removed when closed.
type fileObject struct {
	*os.File
	info store.Info
}

func (o *fileObject) Info() store.Info { return o.info }

func (o *fileObject) Close() error {
	err := o.File.Close()
	os.Remove(o.File.Name())
	return err
}

// notExporting says how to get an agent that exports, for a 404 of the
// point-in-time endpoints.
func notExporting(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && ae.Code == "not_found" {
		return withCode(exitUsage, fmt.Errorf("the agent keeps no backups in a bucket: start keepslotd with -export-bucket and -pitr for a point-in-time restore"))
	}
	return err
}

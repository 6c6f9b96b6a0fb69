package main

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// The verbs of the copies on S3 that keepslotd exports (-export-bucket).

func (a *app) exportCmd() *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "backup-export",
		Short: "Copy the node's backup to its S3 bucket now (--wait: until it is copied and verified)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !wait {
				return endWith(a.tell(cmd, http.MethodPost, "/v1/backup/export", nil), mainKind)
			}
			if _, err := a.ask(cmd.Context(), http.MethodPost, "/v1/backup/export", nil, nil); err != nil {
				return endWith(err, mainKind)
			}
			st, raw, err := a.status(cmd.Context(), mainKind, true)
			if err != nil {
				return err
			}
			ex := st.Status.Export
			if ex == nil {
				return fmt.Errorf("the agent reports no export")
			}
			if a.json {
				b, _ := json.Marshal(ex)
				raw = b
			}
			if ex.State != slot.ExportDone {
				a.print(cmd, raw, "Export failed: "+ex.Error)
				return withCode(exitCodeOf(string(ex.Code)), fmt.Errorf("the export failed: %s", ex.Error))
			}
			a.print(cmd, raw, fmt.Sprintf("Exported to %s (%d bytes); md5 %s and sha256 %s verified.", ex.Key, ex.Size, ex.MD5, ex.SHA256))
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until the copy is verified, and fail with the failure's exit code if it failed")
	return cmd
}

// remoteList is the agent's list of copies.
type remoteList struct {
	Backups []store.Entry `json:"backups"`
}

// remoteList asks the agent for the node's copies on its bucket.
func (a *app) remoteList(ctx context.Context) (remoteList, []byte, error) {
	var l remoteList
	raw, err := a.ask(ctx, http.MethodGet, "/v1/backup/remote", nil, &l)
	return l, raw, err
}

func (a *app) listCmd() *cobra.Command {
	var remote bool
	cmd := &cobra.Command{
		Use:   "backup-list",
		Short: "List the node's backup (--remote: its copies on S3, oldest first)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var (
				rows     []store.Entry
				raw      []byte
				info     pitrInfo
				withPITR bool
				err      error
			)
			if remote {
				rows, raw, info, withPITR, err = a.listRemote(cmd.Context())
			} else {
				rows, raw, err = a.listSlot(cmd.Context())
			}
			if err != nil {
				return err
			}
			if a.json {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", raw)
				return nil
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSIZE\tCREATED\tMD5\tWHERE")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", r.Info.Name, r.Info.Size, r.Info.Created.Format(time.RFC3339), r.Info.MD5, r.Key)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if withPITR && info.Coverage != nil {
				printSlices(cmd, info)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&remote, "remote", false, "list the copies on S3")
	return cmd
}

// listRemote lists the node's copies on its bucket and what the bucket
// holds for point-in-time restores, as rows, as the JSON backup-list
// --json prints (the agent's, with a field "pitr"), and as the agent's
// pitrInfo if it has one (withPITR).
func (a *app) listRemote(ctx context.Context) (rows []store.Entry, raw []byte, info pitrInfo, withPITR bool, err error) {
	l, raw, err := a.remoteList(ctx)
	if err != nil {
		return nil, nil, info, false, err
	}
	var praw []byte
	if info, praw, withPITR, err = a.pitrInfo(ctx); err != nil {
		return nil, nil, info, false, err
	}
	if withPITR {
		raw = withField(raw, "pitr", praw)
	}
	return l.Backups, raw, info, withPITR, nil
}

// listSlot lists the backup in the node's slot, if one is ready, as rows
// and as the JSON backup-list --json prints.
func (a *app) listSlot(ctx context.Context) ([]store.Entry, []byte, error) {
	st, _, err := a.status(ctx, mainKind, false)
	if err != nil {
		return nil, nil, err
	}
	var rows []store.Entry
	if s := st.Status; s.State == slot.StateReady {
		rows = append(rows, store.Entry{Key: "slot", Info: infoOf(s)})
	}
	raw, _ := json.Marshal(remoteList{Backups: rows})
	return rows, raw, nil
}

// printSlices lists the oplog slices on the bucket, with the windows and
// gaps they make.
func printSlices(cmd *cobra.Command, info pitrInfo) {
	cov := info.Coverage
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "\nOplog slices: %d", len(cov.Slices))
	if n := len(cov.Slices); n > 0 {
		var entries, bytes int64
		for _, s := range cov.Slices {
			entries, bytes = entries+s.Entries, bytes+s.Size
		}
		fmt.Fprintf(w, " (%d entries, %d bytes), %s .. %s", entries, bytes,
			cov.Slices[0].FromTime().Format(time.RFC3339), cov.Slices[n-1].UntilTime().Format(time.RFC3339))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SLICE\tFROM\tUNTIL\tENTRIES\tSIZE")
	for _, s := range cov.Slices {
		fmt.Fprintf(tw, "%s\t%d:%d\t%d:%d\t%d\t%d\n", filepath.Base(s.Key), s.From.T, s.From.I, s.Until.T, s.Until.I, s.Entries, s.Size)
	}
	_ = tw.Flush()
	for _, l := range pitrLines(info) {
		fmt.Fprintln(w, l)
	}
}

// fromRemote downloads the copy named name into file (created 0600 or
// truncated) and checks its md5 against the remote's record.
func (a *app) fromRemote(cmd *cobra.Command, name, file string) (retrieveResult, error) {
	l, _, err := a.remoteList(cmd.Context())
	if err != nil {
		return retrieveResult{}, err
	}
	c, err := a.client()
	if err != nil {
		return retrieveResult{}, err
	}
	var want *store.Entry
	for i := range l.Backups {
		if l.Backups[i].Info.Name == name {
			want = &l.Backups[i]
		}
	}
	if want == nil {
		return retrieveResult{}, withCode(exitNoBackup, fmt.Errorf("no copy named %q on the remote; list them with backup-list --remote", name))
	}
	res := retrieveResult{File: file, Name: name, Size: want.Info.Size, MD5: want.Info.MD5}
	resp, err := c.request(cmd.Context(), http.MethodGet, "/v1/backup/remote/"+url.PathEscape(name), nil, nil)
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return res, err
	}
	defer f.Close()
	h := md5.New()
	w := io.MultiWriter(f, h)
	if bar := newProgressBar(cmd.ErrOrStderr(), 0, want.Info.Size); bar != nil {
		defer bar.done()
		w = io.MultiWriter(f, h, bar)
	}
	n, err := copyAnnounced(w, resp.Body, resp.ContentLength, 0, want.Info.Size, "the remote copy "+name, file)
	if errors.Is(err, store.ErrMismatch) {
		f.Close()
		return res, errors.Join(err, os.Remove(file))
	}
	if err != nil {
		return res, withCode(exitUnreachable, fmt.Errorf("the download broke off: %v; run the command again", err))
	}
	if err := f.Sync(); err != nil {
		return res, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != want.Info.Size || (want.Info.MD5 != "" && got != want.Info.MD5) {
		return res, corruptf("%s holds %d bytes with md5 %s; the remote copy %s has %d bytes, md5 %s: the download is damaged, retrieve it again",
			file, n, got, name, want.Info.Size, want.Info.MD5)
	}
	return res, nil
}

// fetchForRestore downloads the copy named name into a new 0600 file in
// a private temporary directory, and returns its path and how to remove it.
func (a *app) fetchForRestore(cmd *cobra.Command, name string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "keepslotctl-restore-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	file := filepath.Join(dir, "backup.enc")
	if _, err := a.fromRemote(cmd, name, file); err != nil {
		cleanup()
		return "", nil, err
	}
	return file, cleanup, nil
}

func infoOf(s slot.Status) store.Info {
	return store.Info{Name: s.Name, Size: s.Size, MD5: s.MD5, SHA256: s.SHA256, Created: s.Finished}
}

package main

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// corruptError is an error about a download that is not the backup it
// should be. It matches store.ErrMismatch, so that backup.Code classifies
// it as corrupt, and ends the program with exitBadBackup.
type corruptError struct{ msg string }

// Error returns what is wrong with the download and what to do.
func (e *corruptError) Error() string { return e.msg }

// Is reports whether target is store.ErrMismatch.
func (e *corruptError) Is(target error) bool { return target == store.ErrMismatch }

// ErrorCode returns errcode.Corrupt.
func (e *corruptError) ErrorCode() errcode.Code { return errcode.Corrupt }

func corruptf(format string, args ...any) error {
	return withCode(exitBadBackup, &corruptError{fmt.Sprintf(format, args...)})
}

// copyAnnounced copies body, which the agent announced as the size bytes
// from byte from on of what, to w, and stops at size: more is an error,
// as is a Content-Length (length, -1 if none) that is not size. file is
// the file written, which the caller removes on such an error. It returns
// the bytes copied.
func copyAnnounced(w io.Writer, body io.Reader, length, from, size int64, what, file string) (int64, error) {
	if length >= 0 && length != size {
		return 0, corruptf("the agent announces %d bytes from byte %d of %s, which has %d bytes: what it sends is not that backup; %s is removed: retrieve again, and check the agent if this recurs",
			length, from, what, from+size, file)
	}
	n, err := io.Copy(w, io.LimitReader(body, size+1))
	if n > size {
		return n, corruptf("the agent sent more than the %d bytes of %s (%d bytes received when keepslotctl stopped): what it sends is not that backup; %s is removed: retrieve again, and check the agent if this recurs",
			from+size, what, from+n, file)
	}
	return n, err
}

// retrieveResult is what backup-retrieve --json prints.
type retrieveResult struct {
	File        string `json:"file"`
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	MD5         string `json:"md5"`
	ResumedFrom int64  `json:"resumed_from,omitempty"`
}

func (a *app) retrieveCmd(k kind) *cobra.Command {
	var out, remote string
	cmd := &cobra.Command{
		Use:   k.verb + "-retrieve",
		Short: "Download the " + k.what + ", encrypted, to " + k.file + " (or -o FILE) and check its md5",
		Long: "Download the " + k.what + ", encrypted as stored, and check its md5 against the\n" +
			"node's status. If FILE holds the start of the same backup, from an interrupted\n" +
			"download, only the rest is downloaded.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var res retrieveResult
			var err error
			if remote != "" {
				res, err = a.fromRemote(cmd, remote, out)
			} else {
				res, err = a.retrieve(cmd, k, out)
			}
			if err != nil {
				return err
			}
			if a.json {
				b, _ := json.Marshal(res)
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Retrieved %s into %s (%d bytes); md5 %s matches.\n", res.Name, res.File, res.Size, res.MD5)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", k.file, "the file to write")
	if k == mainKind {
		cmd.Flags().StringVar(&remote, "from-remote", "", "download the copy of this name from the node's S3 bucket instead (see backup-list --remote)")
	}
	return cmd
}

// retrieve downloads k's backup into file, resuming what file already
// holds of it, and checks the whole file's md5 against the status.
func (a *app) retrieve(cmd *cobra.Command, k kind, file string) (retrieveResult, error) {
	st, _, err := a.status(cmd.Context(), k, false)
	if err != nil {
		return retrieveResult{}, err
	}
	switch st.Status.State {
	case slot.StateReady:
	case slot.StateInProgress:
		return retrieveResult{}, withCode(exitBusy, fmt.Errorf("the %s is still in progress; wait for it (%s-status --wait) or cancel it (%s-cancel)", k.what, k.verb, k.verb))
	default:
		return retrieveResult{}, withCode(exitNoBackup, fmt.Errorf("there is no %s to retrieve: %s", k.what, st.Status.Message()))
	}
	want := st.Status
	res := retrieveResult{File: file, Name: want.Name, Size: want.Size, MD5: want.MD5}

	f, err := os.OpenFile(file, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return res, err
	}
	defer f.Close()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return res, err
	}
	if have > want.Size {
		have = 0 // not a partial download of this backup
	}
	if have < want.Size {
		c, err := a.client()
		if err != nil {
			return res, err
		}
		if have, err = c.download(cmd, k, f, have, want); err != nil {
			if errors.Is(err, store.ErrMismatch) {
				f.Close()
				err = errors.Join(err, os.Remove(file))
			}
			return res, err
		}
		res.ResumedFrom = have
	}
	if err := f.Sync(); err != nil {
		return res, err
	}
	got, err := md5File(f)
	if err != nil {
		return res, err
	}
	if got != want.MD5 {
		return res, corruptf("md5 mismatch: %s has %s, the node's %s %s has %s; the file is damaged: delete it and retrieve again",
			file, got, k.what, want.Name, want.MD5)
	}
	return res, nil
}

// download fetches the backup into f from offset have on (a Range request
// that the agent honours only if its md5 is still the same), and returns
// where it started writing.
func (c *client) download(cmd *cobra.Command, k kind, f *os.File, have int64, want slot.Status) (int64, error) {
	h := http.Header{}
	if have > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		h.Set("If-Range", `"`+want.MD5+`"`)
	}
	resp, err := c.request(cmd.Context(), http.MethodGet, k.path+"/file", nil, h)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if !strings.HasPrefix(resp.Header.Get("Content-Range"), "bytes "+strconv.FormatInt(have, 10)+"-") {
			return 0, fmt.Errorf("the agent sent the range %q, not the one asked for", resp.Header.Get("Content-Range"))
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "Resuming the download at byte %d of %d.\n", have, want.Size)
	case http.StatusOK:
		have = 0 // the whole file: the backup changed, or no range was asked for
	default:
		return 0, fmt.Errorf("the agent answered %s", resp.Status)
	}
	if err := f.Truncate(have); err != nil {
		return 0, err
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return 0, err
	}
	w := io.Writer(f)
	if bar := newProgressBar(cmd.ErrOrStderr(), have, want.Size); bar != nil {
		defer bar.done()
		w = io.MultiWriter(f, bar)
	}
	n, err := copyAnnounced(w, resp.Body, resp.ContentLength, have, want.Size-have, fmt.Sprintf("the node's %s %s", k.what, want.Name), f.Name())
	switch {
	case errors.Is(err, store.ErrMismatch):
		return 0, err
	case err != nil:
		return 0, withCode(exitUnreachable, fmt.Errorf("the download broke off: %v; run the command again to resume", err))
	case have+n < want.Size:
		return 0, withCode(exitUnreachable, fmt.Errorf("the download ended at byte %d of %d; run the command again to resume", have+n, want.Size))
	}
	return have, nil
}

func md5File(f *os.File) (string, error) {
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// progressBar draws a one-line progress bar on a terminal.
type progressBar struct {
	w        io.Writer
	n, total int64
	last     time.Time
}

// newProgressBar returns a bar on w if w is a terminal, else nil.
func newProgressBar(w io.Writer, done, all int64) *progressBar {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) || all <= 0 {
		return nil
	}
	return &progressBar{w: w, n: done, total: all}
}

func (p *progressBar) Write(b []byte) (int, error) {
	p.n += int64(len(b))
	if time.Since(p.last) > 100*time.Millisecond || p.n == p.total {
		p.last = time.Now()
		const width = 30
		n := int(int64(width) * p.n / p.total)
		fmt.Fprintf(p.w, "\r[%s%s] %3d%% %s / %s", strings.Repeat("=", n), strings.Repeat(" ", width-n),
			100*p.n/p.total, mib(p.n), mib(p.total))
	}
	return len(b), nil
}

func (p *progressBar) done() { fmt.Fprintln(p.w) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

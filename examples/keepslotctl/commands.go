package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/examples/internal/agentaddr"
	"github.com/keepslot/keepslot/examples/internal/secretfile"
	"github.com/keepslot/keepslot/slot"
)

// app holds the global flags.
type app struct {
	target, token, tokenFile string
	caFile                   string
	tls, insecure, json      bool

	c *client // made by the first call of client
}

// kind is one of the agent's two backups.
type kind struct {
	verb string // "backup" or "backup-sensitive"
	path string // the agent's endpoint
	file string // the default name of a retrieved file
	what string // for messages
}

var (
	mainKind      = kind{"backup", "/v1/backup", "backup-retrieve.tar.gz.enc", "backup"}
	sensitiveKind = kind{"backup-sensitive", "/v1/sensitive", "backup-sensitive-retrieve.tar.gz.enc", "sensitive backup"}
)

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "keepslotctl",
		Short:         "Drive a keepslotd node agent with the appliance's verbs, and restore retrieved backups",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		// Before every command: the flag groups, as usage errors.
		PersistentPreRunE: checkFlagGroups,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q; see keepslotctl --help", args[0])
			}
			_ = cmd.Help()
			return usageErrorf("name a command")
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return withCode(exitUsage, err) })
	pf := root.PersistentFlags()
	pf.StringVarP(&a.target, "target", "t", "127.0.0.1", "the node: host or host:port (default port "+agentaddr.Port+")")
	pf.StringVar(&a.token, "token", "", "the agent's bearer token (or $KEEPSLOT_TOKEN, or --token-file)")
	pf.StringVar(&a.tokenFile, "token-file", "", "a file holding the agent's bearer token (keepslotd's DATA/token): a regular file of its owner's only (0600), at most 4 KiB")
	pf.BoolVar(&a.tls, "tls", false, "speak HTTPS to the agent")
	pf.StringVar(&a.caFile, "ca-file", "", "with --tls, trust the certificates in this PEM file (such as the agent's self-signed one)")
	pf.BoolVar(&a.insecure, "insecure", false, "with --tls, do not check the agent's certificate")
	pf.BoolVar(&a.json, "json", false, "print machine-readable JSON")

	for _, k := range []kind{mainKind, sensitiveKind} {
		root.AddCommand(a.startCmd(k), a.statusCmd(k), a.retrieveCmd(k), a.deleteCmd(k), a.cancelCmd(k))
	}
	root.AddCommand(a.roleCmd(), a.restoreCmd(), a.exportCmd(), a.listCmd(), a.pitrFlushCmd(), a.pitrKeyCmd())
	root.AddCommand(a.drillCmd(), a.scheduleCmd())
	return root
}

// client returns the client of the node named by the global flags.
func (a *app) client() (*client, error) {
	if a.c != nil {
		return a.c, nil
	}
	base, err := baseURL(a.target, a.tls)
	if err != nil {
		return nil, err
	}
	token := a.token
	if token == "" {
		token = os.Getenv("KEEPSLOT_TOKEN")
	}
	if token == "" && a.tokenFile != "" {
		b, err := secretfile.Read(a.tokenFile)
		if errors.Is(err, secretfile.ErrUnsafe) {
			return nil, withCode(exitUsage, fmt.Errorf("--token-file: %w", err))
		}
		if err != nil {
			return nil, withCode(exitUnauthorized, fmt.Errorf("read the token: %w", err))
		}
		token = strings.TrimSpace(string(b))
	}
	c, err := newClient(base, token, a.caFile, a.insecure)
	a.c = c
	return c, err
}

// ask sends a request to the agent at -t, with body as JSON if not nil,
// decodes the JSON answer into out (nil: none expected) and returns the
// answer as sent. Its error carries its exit code: that of the agent's
// error code, exitUnreachable for an agent that does not answer, or the
// usage or token error of the global flags (client.request, a.client).
func (a *app) ask(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	c, err := a.client()
	if err != nil {
		return nil, err
	}
	return c.call(ctx, method, path, body, out)
}

// show asks the agent (ask) and prints its answer, as sent with --json,
// else as text renders it.
func show[T any](cmd *cobra.Command, a *app, method, path string, body any, text func(io.Writer, T)) error {
	var v T
	raw, err := a.ask(cmd.Context(), method, path, body, &v)
	if err != nil {
		return err
	}
	if a.json {
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n", raw)
		return nil
	}
	text(cmd.OutOrStdout(), v)
	return nil
}

// message is the agent's answer to a verb: {"message":"…"}.
type message struct {
	Message string `json:"message"`
}

// tell asks the agent to act (show) and prints its message.
func (a *app) tell(cmd *cobra.Command, method, path string, body any) error {
	return show(cmd, a, method, path, body, func(w io.Writer, m message) { fmt.Fprintln(w, m.Message) })
}

// print writes raw (the agent's JSON) with --json, and text otherwise.
func (a *app) print(cmd *cobra.Command, raw []byte, text string) {
	if a.json {
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n", raw)
		return
	}
	fmt.Fprintln(cmd.OutOrStdout(), text)
}

func (a *app) startCmd(k kind) *cobra.Command {
	var pw passwordFlags
	cmd := &cobra.Command{
		Use:   k.verb,
		Short: "Start a " + k.what + " on the node; it runs on in the background",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			password, err := pw.read(true)
			if err != nil {
				return err
			}
			return endWith(a.tell(cmd, http.MethodPost, k.path, map[string]string{"password": string(password)}), k)
		},
	}
	pw.add(cmd)
	return cmd
}

// statusResponse is the agent's status answer.
type statusResponse struct {
	slot.Appliance
	Status slot.Status `json:"status"`
}

func (a *app) statusCmd(k kind) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   k.verb + "-status",
		Short: "Print the " + k.what + "'s status in the appliance's JSON (--json: the full status)",
		Long: "Print the " + k.what + "'s status in the appliance's JSON shape. --json prints the full\n" +
			"status too. --wait first waits for a running backup to end and, if it failed, fails\n" +
			"with the exit code of its failure (1 if it was cancelled).",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, raw, err := a.status(cmd.Context(), k, wait)
			if err != nil {
				return err
			}
			var info pitrInfo
			withPITR := false
			if k == mainKind {
				// The restorable windows, for an agent whose bucket has them;
				// the status is printed even when the bucket does not answer.
				var perr error
				var praw []byte
				info, praw, withPITR, perr = a.pitrInfo(cmd.Context())
				switch {
				case perr != nil:
					fmt.Fprintf(cmd.ErrOrStderr(), "keepslotctl: the bucket's restorable windows are unknown: %v\n", perr)
				case withPITR && a.json:
					raw = withField(raw, "pitr", praw)
				}
			}
			appliance, _ := json.Marshal(st.Appliance)
			a.print(cmd, raw, string(appliance))
			if withPITR && !a.json {
				for _, l := range pitrLines(info) {
					fmt.Fprintln(cmd.ErrOrStderr(), "pitr: "+l)
				}
			}
			if wait && st.Status.State == slot.StateFailed {
				return withCode(exitCodeOf(string(st.Status.Code)), fmt.Errorf("the %s failed: %s", k.what, st.Status.Error))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait until a running backup ends, and fail if it failed")
	return cmd
}

// withField adds the field name, of the JSON value v, to the JSON object
// raw.
func withField(raw []byte, name string, v []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	m[name] = v
	b, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return b
}

// status asks the agent for k's status, waiting for a running backup to
// end if wait is set.
func (a *app) status(ctx context.Context, k kind, wait bool) (statusResponse, []byte, error) {
	path := k.path
	if wait {
		path += "?wait=1"
	}
	var st statusResponse
	raw, err := a.ask(ctx, http.MethodGet, path, nil, &st)
	return st, raw, err
}

func (a *app) deleteCmd(k kind) *cobra.Command {
	return &cobra.Command{
		Use:   k.verb + "-delete",
		Short: "Delete the node's " + k.what + ", so that a new one can be made",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return endWith(a.tell(cmd, http.MethodDelete, k.path, nil), k)
		},
	}
}

func (a *app) cancelCmd(k kind) *cobra.Command {
	return &cobra.Command{
		Use:   k.verb + "-cancel",
		Short: "Cancel the node's running " + k.what + " (or its export) and wait until it has cleaned up",
		Long: "Cancel the node's running " + k.what + ", or the export of the stored one, and wait\n" +
			"until it has cleaned up: a cancelled backup leaves the slot empty and its status\n" +
			"says cancelled. With nothing running, it says so and succeeds.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.tell(cmd, http.MethodPost, k.path+"/cancel", nil)
		},
	}
}

// endWith adds to the agent's "in progress" error the verbs that end what
// runs: k's status --wait and cancel.
func endWith(err error, k kind) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == string(errcode.InProgress) {
		ae.Message += fmt.Sprintf(" (keepslotctl %s-status --wait waits for it, %s-cancel cancels it)", k.verb, k.verb)
	}
	return err
}

func (a *app) roleCmd() *cobra.Command {
	var unset, show bool
	cmd := &cobra.Command{
		Use:   "set-as-backup",
		Short: "Put the node in the backup role (--unset: take it out; --show: only print it)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if show {
				return a.tell(cmd, http.MethodGet, "/v1/role", nil)
			}
			return a.tell(cmd, http.MethodPost, "/v1/role", map[string]bool{"backup": !unset})
		},
	}
	cmd.Flags().BoolVar(&unset, "unset", false, "take the node out of the backup role")
	cmd.Flags().BoolVar(&show, "show", false, "print the node's role without changing it")
	exclusive(cmd, "--unset takes the node out of the backup role, --show only prints it: give one", "unset", "show")
	return cmd
}

func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErrorf("unexpected argument %q", args[0])
	}
	return nil
}

// passwordFlags are the ways to give a password.
type passwordFlags struct {
	password, file string
	cmd            *cobra.Command // whose stderr gets the warning about --password
}

func (p *passwordFlags) add(cmd *cobra.Command) {
	p.cmd = cmd
	cmd.Flags().StringVar(&p.password, "password", "", "the backup password; other users of the host see it in the process list: prefer --password-file, $KEEPSLOT_PASSWORD or the prompt")
	cmd.Flags().StringVar(&p.file, "password-file", "", "a file holding the backup password (its first line): a regular file of its owner's only (0600), at most 4 KiB, not a link or a pipe")
}

// passwordWarning is what keepslotctl says on stderr when --password is used.
const passwordWarning = "keepslotctl: warning: --password shows the password to other users of this host (ps, /proc) and leaves it in the shell's history; give it with --password-file FILE, $KEEPSLOT_PASSWORD or, on a terminal, the prompt"

// read returns the password from the flag (with a warning on stderr), the
// file, the environment or, on a terminal, a prompt without echo, asked
// twice if confirm is set.
func (p *passwordFlags) read(confirm bool) ([]byte, error) {
	switch {
	case p.password != "":
		if p.cmd != nil {
			fmt.Fprintln(p.cmd.ErrOrStderr(), passwordWarning)
		}
		return []byte(p.password), nil
	case p.file != "":
		b, err := secretfile.Read(p.file)
		if err != nil {
			return nil, withCode(exitUsage, fmt.Errorf("--password-file: %w", err))
		}
		line, _, _ := strings.Cut(string(b), "\n")
		pw := []byte(strings.TrimSuffix(line, "\r"))
		clear(b)
		return pw, nil
	case os.Getenv("KEEPSLOT_PASSWORD") != "":
		return []byte(os.Getenv("KEEPSLOT_PASSWORD")), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, usageErrorf("no password: give --password, --password-file or $KEEPSLOT_PASSWORD")
	}
	pw, err := prompt(fd, "Password: ")
	if err != nil {
		return nil, err
	}
	if confirm {
		again, err := prompt(fd, "Repeat the password: ")
		if err != nil {
			return nil, err
		}
		if string(again) != string(pw) {
			return nil, usageErrorf("the passwords differ")
		}
	}
	return pw, nil
}

func prompt(fd int, label string) ([]byte, error) {
	fmt.Fprint(os.Stderr, label)
	pw, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, fmt.Errorf("read the password: %w", err)
	}
	return pw, nil
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/drill"
	"github.com/keepslot/keepslot/errcode"
)

// agentDrill is a drill as keepslotd reports it (GET /v1/drill's last).
type agentDrill struct {
	Backup         string          `json:"backup"`
	Started        time.Time       `json:"started"`
	Finished       time.Time       `json:"finished"`
	Passed         bool            `json:"passed"`
	RestoreSeconds float64         `json:"restore_seconds"`
	Bytes          int64           `json:"bytes"`
	Error          string          `json:"error"`
	Code           string          `json:"code"`
	Report         json.RawMessage `json:"report"`
}

// agentDrills is GET /v1/drill's answer.
type agentDrills struct {
	Running     bool        `json:"running"`
	Last        *agentDrill `json:"last"`
	LastSuccess *agentDrill `json:"last_success"`
	Failures    int64       `json:"failures"`
}

func (a *app) drillCmd() *cobra.Command {
	var (
		pw        passwordFlags
		uri       string
		prefix    string
		sensitive bool
		tempDir   string
	)
	cmd := &cobra.Command{
		Use:   "drill [FILE]",
		Short: "Prove a backup restores: on the node's agent, or with FILE and --uri here, into a scratch server",
		Long: "Without FILE, ask the agent at -t to drill the backup in its slot, into its scratch\n" +
			"server (keepslotd -drill-uri, or an embedded one), and wait for the report; the password\n" +
			"is the agent's -schedule-password-file unless one is given.\n" +
			"With FILE (a retrieved backup), drill it here: restore it into the scratch server at\n" +
			"--uri (it must hold no database of its own; or give --prefix to restore into scratch\n" +
			"databases PREFIX<db> of it), prove the counts, digests, indexes and the oplog's replay,\n" +
			"and drop what was restored. --sensitive drills a sensitive backup into a temporary\n" +
			"0700 directory, removed after. A drill that finds a difference exits 13.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("drill takes one file at most, got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				if uri != "" || prefix != "" || sensitive {
					return usageErrorf("--uri, --prefix and --sensitive drill a FILE here; without FILE the agent drills into its own scratch server")
				}
				return a.drillAgent(cmd, &pw)
			}
			if uri == "" && !sensitive {
				return usageErrorf("drill FILE needs --uri, a scratch MongoDB server (never the node the backup protects)")
			}
			password, err := pw.read(false)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return usageErrorf("open the backup: %v", err)
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			opts := &drill.Options{Conn: conn.Config{URI: uri}, Prefix: prefix, TempDir: tempDir}
			var rep *drill.Report
			if sensitive {
				rep, err = drill.RunSensitive(cmd.Context(), f, fi.Size(), password, opts)
			} else {
				rep, err = drill.Run(cmd.Context(), f, fi.Size(), password, opts)
			}
			if rep != nil {
				if a.json {
					b, _ := json.Marshal(rep)
					fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
				} else {
					printDrill(cmd.OutOrStdout(), args[0], rep)
				}
			}
			if err != nil {
				return withCode(exitCodeOf(string(errcode.Of(err))), err)
			}
			return nil
		},
	}
	pw.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&uri, "uri", "", "with FILE: the scratch MongoDB server to restore into")
	fl.StringVar(&prefix, "prefix", "", "with FILE: restore into databases PREFIX<db> of --uri, dropped after, instead of a whole scratch server")
	fl.BoolVar(&sensitive, "sensitive", false, "with FILE: the file is a sensitive backup")
	fl.StringVar(&tempDir, "temp-dir", "", "with --sensitive: where to make the temporary directory (default the system's)")
	return cmd
}

// drillAgent asks the agent for a drill, waits for it and prints it.
func (a *app) drillAgent(cmd *cobra.Command, pw *passwordFlags) error {
	body := map[string]string{}
	if pw.password != "" || pw.file != "" || os.Getenv("KEEPSLOT_PASSWORD") != "" {
		password, err := pw.read(false)
		if err != nil {
			return err
		}
		body["password"] = string(password)
	}
	if _, err := a.ask(cmd.Context(), http.MethodPost, "/v1/drill", body, nil); err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.Code == string(errcode.InProgress) {
			ae.Message += " (keepslotctl schedule shows the run)"
		}
		return err
	}
	var st agentDrills
	if _, err := a.ask(cmd.Context(), http.MethodGet, "/v1/drill?wait=1", nil, &st); err != nil {
		return err
	}
	if st.Last == nil {
		return errors.New("the agent reports no drill")
	}
	if a.json {
		b, _ := json.Marshal(st.Last)
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
	} else {
		var rep drill.Report
		if len(st.Last.Report) > 0 && json.Unmarshal(st.Last.Report, &rep) == nil {
			printDrill(cmd.OutOrStdout(), st.Last.Backup, &rep)
		} else {
			// The drill ended before it had a report (a wrong password, say).
			fmt.Fprintf(cmd.OutOrStdout(), "Drill of %s: FAILED\n", st.Last.Backup)
		}
	}
	if !st.Last.Passed {
		return withCode(exitCodeOf(st.Last.Code), fmt.Errorf("the drill failed: %s", st.Last.Error))
	}
	return nil
}

// printDrill prints a drill's report as a table.
func printDrill(w io.Writer, name string, r *drill.Report) {
	verdict := "PASSED"
	if !r.Passed {
		verdict = "FAILED"
	}
	fmt.Fprintf(w, "Drill of %s (%s backup): %s\n", name, r.Backup, verdict)
	fmt.Fprintf(w, "Time to restore: %s (%s/s, %.0f documents/s); checks: %s\n",
		r.RestoreTime.Round(time.Millisecond), mib(int64(r.BytesPerSecond)), r.DocumentsPerSecond, r.CheckTime.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if len(r.Namespaces) > 0 {
		fmt.Fprintln(tw, "NAMESPACE\tDOCUMENTS\tFOUND\tDIGEST\tINDEXES")
		for _, n := range r.Namespaces {
			digest := "equal"
			switch {
			case !n.Checked:
				digest = "not checked"
			case n.ExpectedDigest != n.FoundDigest:
				digest = "DIFFERS"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d/%d\n", n.Namespace, n.ExpectedDocuments, n.FoundDocuments, digest, len(n.FoundIndexes), len(n.ExpectedIndexes))
		}
	}
	if len(r.Secrets) > 0 {
		fmt.Fprintln(tw, "SECRET\tSIZE\tFOUND\tSHA-256")
		for _, s := range r.Secrets {
			sum := "equal"
			if s.ExpectedSHA256 != s.FoundSHA256 {
				sum = "DIFFERS"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", s.Name, s.ExpectedSize, s.FoundSize, sum)
		}
	}
	tw.Flush()
	if p := r.Replay; p != nil {
		fmt.Fprintf(w, "Oplog replay: %d entries, %d conflicts, %d uncommitted, %d incomplete\n", p.Entries, p.Conflicts, p.Uncommitted, p.Incomplete)
	}
	for _, d := range r.Differences {
		fmt.Fprintf(w, "Differs: %s\n", d)
	}
	if r.Error != "" && len(r.Differences) == 0 {
		fmt.Fprintf(w, "Error: %s\n", r.Error)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintf(w, "Notes: %s\n", strings.Join(r.Notes, "; "))
	}
}

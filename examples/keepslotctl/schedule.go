package main

import (
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

// scheduleStep and scheduleRun are keepslotd's GET /v1/schedule records.
type scheduleStep struct {
	Step     string    `json:"step"`
	Outcome  string    `json:"outcome"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Detail   string    `json:"detail"`
	Error    string    `json:"error"`
	Code     string    `json:"code"`
}

type scheduleRun struct {
	Started  time.Time      `json:"started"`
	Finished time.Time      `json:"finished"`
	Outcome  string         `json:"outcome"`
	Step     string         `json:"step"`
	Backup   string         `json:"backup"`
	Steps    []scheduleStep `json:"steps"`
	Error    string         `json:"error"`
	Code     string         `json:"code"`
}

type scheduleAnswer struct {
	Schedule    string       `json:"schedule"`
	Next        time.Time    `json:"next"`
	Running     *scheduleRun `json:"running"`
	Last        *scheduleRun `json:"last"`
	LastSuccess time.Time    `json:"last_success"`
	Failures    int64        `json:"failures"`
}

func (a *app) scheduleCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schedule",
		Short: "Show the agent's scheduled backups: the next run, and the running or last run step by step",
		Long: "Show keepslotd's schedule (-schedule): when the next run starts, and how the running\n" +
			"or last run went, per step: replace, backup, export, drill, retention. It exits 0\n" +
			"whatever the last run's outcome; --json gives it to scripts.",
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return show(cmd, a, http.MethodGet, "/v1/schedule", nil, printSchedule)
		},
	}
}

// printSchedule prints the agent's schedule: the next run, and the running
// and last runs step by step.
func printSchedule(w io.Writer, st scheduleAnswer) {
	fmt.Fprintf(w, "Schedule: %s\n", st.Schedule)
	if !st.Next.IsZero() {
		fmt.Fprintf(w, "Next run: %s\n", st.Next.Local().Format(time.RFC3339))
	}
	if !st.LastSuccess.IsZero() {
		fmt.Fprintf(w, "Last successful run: %s\n", st.LastSuccess.Local().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Failed runs: %d\n", st.Failures)
	if st.Running != nil {
		printRun(w, "Running", st.Running)
	}
	if st.Last != nil {
		printRun(w, "Last run", st.Last)
	}
}

// printRun prints a scheduled run, what it is, and its steps as a table.
func printRun(w io.Writer, what string, run *scheduleRun) {
	fmt.Fprintf(w, "%s: %s, started %s", what, run.Outcome, run.Started.Local().Format(time.RFC3339))
	if run.Backup != "" {
		fmt.Fprintf(w, ", backup %s", run.Backup)
	}
	fmt.Fprintln(w)
	if run.Error != "" {
		fmt.Fprintf(w, "  %s at %s: %s\n", run.Outcome, run.Step, run.Error)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  STEP\tOUTCOME\tTOOK\tDETAIL")
	for _, s := range run.Steps {
		outcome, took, detail := s.Outcome, "", s.Detail
		if outcome == "" {
			outcome = "-"
		}
		if !s.Started.IsZero() && !s.Finished.IsZero() {
			took = s.Finished.Sub(s.Started).Round(time.Millisecond).String()
		}
		if s.Code != "" {
			detail = s.Code
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", s.Step, outcome, took, detail)
	}
	tw.Flush()
}

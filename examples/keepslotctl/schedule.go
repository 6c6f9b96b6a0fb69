package main

import (
	"fmt"
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
			c, err := a.client()
			if err != nil {
				return err
			}
			var st scheduleAnswer
			var raw []byte
			if err := c.call(cmd.Context(), http.MethodGet, "/v1/schedule", nil, &st, &raw); err != nil {
				return err
			}
			if a.json {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\n", raw)
				return nil
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Schedule: %s\n", st.Schedule)
			if !st.Next.IsZero() {
				fmt.Fprintf(w, "Next run: %s\n", st.Next.Local().Format(time.RFC3339))
			}
			if !st.LastSuccess.IsZero() {
				fmt.Fprintf(w, "Last successful run: %s\n", st.LastSuccess.Local().Format(time.RFC3339))
			}
			fmt.Fprintf(w, "Failed runs: %d\n", st.Failures)
			for _, r := range []struct {
				what string
				run  *scheduleRun
			}{{"Running", st.Running}, {"Last run", st.Last}} {
				if r.run == nil {
					continue
				}
				fmt.Fprintf(w, "%s: %s, started %s", r.what, r.run.Outcome, r.run.Started.Local().Format(time.RFC3339))
				if r.run.Backup != "" {
					fmt.Fprintf(w, ", backup %s", r.run.Backup)
				}
				fmt.Fprintln(w)
				if r.run.Error != "" {
					fmt.Fprintf(w, "  %s at %s: %s\n", r.run.Outcome, r.run.Step, r.run.Error)
				}
				tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  STEP\tOUTCOME\tTOOK\tDETAIL")
				for _, s := range r.run.Steps {
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
			return nil
		},
	}
}

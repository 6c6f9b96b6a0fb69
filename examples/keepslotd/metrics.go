package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keepslot/keepslot/pitr"
	"github.com/keepslot/keepslot/slot"
)

// metrics is the agent's Prometheus collector: it reads the main
// backup's and the slicer's status at each scrape. An operator alerts on
// keepslot_backup_last_ready_age_seconds > 26*3600 ("no backup for 26 h")
// or keepslot_pitr_lag_seconds > 300 ("PITR lag > 5 min") without parsing
// logs.
type metrics struct {
	b      slot.Backupper
	slicer *pitr.Slicer // nil without -pitr
	now    func() time.Time

	mu        sync.Mutex
	lastReady *slot.Status // the newest ready backup seen, kept after it is deleted
	lastFail  *slot.Status // the newest failed backup seen
}

var (
	descState          = desc("backup_state", "1 for the main backup's state: none, in_progress, ready or failed.", "state")
	descReadyTime      = desc("backup_last_ready_timestamp_seconds", "When the newest ready backup the agent has seen finished, in Unix seconds.")
	descReadyAge       = desc("backup_last_ready_age_seconds", "Seconds since the newest ready backup the agent has seen finished.")
	descReadySize      = desc("backup_last_ready_size_bytes", "The size of the newest ready backup the agent has seen.")
	descReadyDuration  = desc("backup_last_ready_duration_seconds", "How long the newest ready backup the agent has seen took.")
	descFailure        = desc("backup_last_failure_timestamp_seconds", "When the newest failed backup the agent has seen ended, in Unix seconds, labelled with its error code.", "code")
	descExport         = desc("export_state", "1 for the state of the last export to the bucket: in_progress, done or failed, labelled with the failure's code.", "state", "code")
	descExportDone     = desc("export_last_finished_timestamp_seconds", "When the last export ended, in Unix seconds.")
	descPITRRunning    = desc("pitr_running", "1 while the oplog slicer runs.")
	descPITRLag        = desc("pitr_lag_seconds", "Seconds since the end of the newest oplog slice: a restore reaches no later.")
	descPITRGaps       = desc("pitr_gaps", "The gaps in the oplog slices that the slicer found since it started (the oplog rolled over while it was not reading it, an entry logged late or too large for a restore); each is recorded in the next slice.")
	descPITRIgnored    = desc("pitr_ignored_objects", "Objects in the slices' folder that the slicer could not authenticate as this node's when it last looked for where to resume (someone wrote the bucket, or the key changed).")
	descPITRError      = desc("pitr_error", "1 while the slicer's last attempt failed, labelled with the error code; 0 otherwise.", "code")
	descPITRSlices     = desc("pitr_slices_stored_total", "Oplog slices stored since the agent started.")
	descPITREntries    = desc("pitr_entries_stored_total", "Oplog entries stored in slices since the agent started.")
	statusScrapeBudget = 10 * time.Second
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("keepslot_"+name, help, labels, nil)
}

// Describe implements prometheus.Collector.
func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descReadyTime, descReadyAge, descReadySize, descReadyDuration, descFailure,
		descExport, descExportDone, descPITRRunning, descPITRLag, descPITRGaps, descPITRIgnored, descPITRError, descPITRSlices, descPITREntries} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), statusScrapeBudget)
	defer cancel()
	if st, err := m.b.Status(ctx); err == nil {
		for _, s := range []slot.State{slot.StateNone, slot.StateInProgress, slot.StateReady, slot.StateFailed} {
			gauge(descState, boolFloat(st.State == s), string(s))
		}
		m.mu.Lock()
		switch st.State {
		case slot.StateReady:
			if m.lastReady == nil || !st.Finished.Before(m.lastReady.Finished) {
				m.lastReady = &st
			}
		case slot.StateFailed:
			m.lastFail = &st
		}
		ready, fail := m.lastReady, m.lastFail
		m.mu.Unlock()
		if ready != nil {
			gauge(descReadyTime, unixSeconds(ready.Finished))
			gauge(descReadyAge, m.now().Sub(ready.Finished).Seconds())
			gauge(descReadySize, float64(ready.Size))
			if !ready.Started.IsZero() {
				gauge(descReadyDuration, ready.Finished.Sub(ready.Started).Seconds())
			}
		}
		if fail != nil {
			gauge(descFailure, unixSeconds(fail.Finished), string(fail.Code))
		}
		if ex := st.Export; ex != nil {
			gauge(descExport, 1, string(ex.State), string(ex.Code))
			if !ex.Finished.IsZero() {
				gauge(descExportDone, unixSeconds(ex.Finished))
			}
		}
	}
	if m.slicer != nil {
		st := m.slicer.Status()
		gauge(descPITRRunning, boolFloat(st.Running))
		if !st.Until.IsZero() {
			// Never below zero: slices that end in the future are an error
			// of the status (pitr.ErrClock), which pitr_error shows.
			gauge(descPITRLag, max(0, m.now().Sub(time.Unix(int64(st.Until.T), 0)).Seconds()))
		}
		gauge(descPITRGaps, float64(len(st.Gaps)))
		gauge(descPITRIgnored, float64(len(st.Ignored)))
		gauge(descPITRError, boolFloat(st.Error != ""), string(st.Code))
		ch <- prometheus.MustNewConstMetric(descPITRSlices, prometheus.CounterValue, float64(st.Slices))
		ch <- prometheus.MustNewConstMetric(descPITREntries, prometheus.CounterValue, float64(st.Entries))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// metricsHandler serves the collectors in Prometheus' text format.
func metricsHandler(m *metrics, more ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(m)
	reg.MustRegister(more...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

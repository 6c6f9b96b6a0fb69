package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/keepslot/keepslot/errcode"
)

// The notifier: with -notify-url, the agent posts a small JSON document
// (event below) on every failed scheduled run or drill, and on the first
// success after a failure. It never blocks the run: events wait in a
// bounded queue (the oldest is dropped, and counted, when it is full) for
// one goroutine that posts each with a timeout and a bounded number of
// retries, backing off between them. The document holds no password, key
// or token: the error's message, with any user:password@ of a URL masked.

// event is the document posted to -notify-url.
type event struct {
	Agent   string       `json:"agent"` // always "keepslotd"
	Node    string       `json:"node"`
	Event   string       `json:"event"` // run_failed, drill_failed, recovered
	Time    time.Time    `json:"time"`
	Step    string       `json:"step,omitempty"`   // where a run failed
	Backup  string       `json:"backup,omitempty"` // the backup's name
	Code    errcode.Code `json:"code,omitempty"`
	Message string       `json:"message,omitempty"`
}

// runEvent is the event of a scheduled run's outcome.
func runEvent(r *runRecord, kind string) event {
	return event{Event: kind, Time: r.Finished, Step: r.Step, Backup: r.Backup, Code: r.Code, Message: r.Error}
}

// Notifier defaults.
const (
	notifyQueue   = 32
	notifyTries   = 5
	notifyTimeout = 10 * time.Second
	notifyBackoff = time.Second // doubled after each failed try
)

// notifier posts events to a URL in the background. A nil *notifier
// drops what it is sent.
type notifier struct {
	url     string
	node    string
	client  *http.Client
	tries   int
	timeout time.Duration
	backoff time.Duration
	max     int // the queue's bound
	log     *slog.Logger

	mu      sync.Mutex
	queue   []event
	dropped int64 // events dropped from a full queue
	failed  int64 // events not delivered after every try
	sent    int64
	wake    chan struct{}
}

// newNotifier checks rawURL and returns a notifier for it, or nil when
// rawURL is empty.
func newNotifier(rawURL, node string, log *slog.Logger) (*notifier, error) {
	if rawURL == "" {
		return nil, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: -notify-url must be an http:// or https:// URL", errSchedule)
	}
	if node == "" {
		node, _ = os.Hostname()
	}
	return &notifier{
		url: rawURL, node: node, client: &http.Client{}, tries: notifyTries, timeout: notifyTimeout,
		backoff: notifyBackoff, max: notifyQueue, log: log, wake: make(chan struct{}, 1),
	}, nil
}

// send queues e, dropping the oldest queued event if the queue is full;
// it never blocks.
func (n *notifier) send(e event) {
	if n == nil {
		return
	}
	e.Agent, e.Node = "keepslotd", n.node
	e.Message = maskURLCredentials(e.Message)
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	n.mu.Lock()
	if len(n.queue) >= n.max {
		n.queue = n.queue[1:]
		n.dropped++
	}
	n.queue = append(n.queue, e)
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// counts returns how many events were sent, dropped from a full queue,
// and given up on.
func (n *notifier) counts() (sent, dropped, failed int64) {
	if n == nil {
		return 0, 0, 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sent, n.dropped, n.failed
}

// Run posts the queued events until ctx is done.
func (n *notifier) Run(ctx context.Context) {
	for {
		n.mu.Lock()
		var e event
		ok := len(n.queue) > 0
		if ok {
			e = n.queue[0]
			n.queue = n.queue[1:]
		}
		n.mu.Unlock()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-n.wake:
			}
			continue
		}
		err := n.post(ctx, e)
		n.mu.Lock()
		if err != nil {
			n.failed++
		} else {
			n.sent++
		}
		n.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			n.log.Error("notify: the event was not delivered", "event", e.Event, "host", hostOf(n.url), "error", err)
		}
	}
}

// post delivers e, trying up to n.tries times with a doubling backoff;
// a 4xx other than 408 and 429 is not tried again.
func (n *notifier) post(ctx context.Context, e event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	wait := n.backoff
	var last error
	for try := 0; try < n.tries; try++ {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		retry, err := n.postOnce(ctx, body)
		if err == nil {
			return nil
		}
		last = err
		if !retry {
			break
		}
	}
	return last
}

func (n *notifier) postOnce(ctx context.Context, body []byte) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "keepslotd")
	resp, err := n.client.Do(req)
	if err != nil {
		// The URL may carry a token: say only which host failed.
		return true, fmt.Errorf("post to %s failed (%w)", hostOf(n.url), errcode.New(errcode.Unreachable, "unreachable"))
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return true, fmt.Errorf("%s answered %s", hostOf(n.url), resp.Status)
	default:
		return false, fmt.Errorf("%s answered %s; check -notify-url", hostOf(n.url), resp.Status)
	}
}

// hostOf is rawURL's host, for logs: the URL's path or query may hold a
// token.
func hostOf(rawURL string) string {
	if u, err := url.Parse(rawURL); err == nil {
		return u.Host
	}
	return "the notify URL"
}

var urlCredentials = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@`)

// maskURLCredentials replaces the user:password@ of any URL in s.
func maskURLCredentials(s string) string {
	return urlCredentials.ReplaceAllString(s, "${1}****@")
}

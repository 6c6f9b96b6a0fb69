package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/examples/internal/agentaddr"
	"github.com/keepslot/keepslot/store"
)

// client talks to a keepslotd agent.
type client struct {
	base  string // such as "http://10.0.0.5:7443"
	token string
	http  *http.Client
}

// apiError is an error the agent answered with.
type apiError struct {
	Status  int    `json:"-"`
	Code    string `json:"error"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

// ErrorCode returns the agent's code as keepslot's, so that errcode.Of
// classifies an agent's answer wherever the library wraps it (a
// point-in-time restore reads the bucket through the agent): bad_request is
// invalid, request_timeout unreachable, and a code keepslot does not have
// is internal.
func (e *apiError) ErrorCode() errcode.Code {
	switch c := errcode.Code(e.Code); c {
	case "bad_request":
		return errcode.Invalid
	case "request_timeout":
		return errcode.Unreachable
	case errcode.EmptyPassword, errcode.NotBackupNode, errcode.InProgress, errcode.SlotOccupied, errcode.NoBackup,
		errcode.Unreachable, errcode.Unauthorized, errcode.InsufficientSpace, errcode.WrongPassword, errcode.Corrupt,
		errcode.CountMismatch, errcode.DuplicateKey, errcode.OplogRollover, errcode.Exists, errcode.Invalid,
		errcode.Cancelled, errcode.Interrupted, errcode.SourceChanged, errcode.Sharded, errcode.DrillFailed:
		return c
	default:
		return errcode.Internal
	}
}

// unreachableError: the agent does not answer, or its answer broke off. It
// matches store.ErrUnreachable and carries errcode.Unreachable, so that
// the library, which reads the bucket through the agent in a point-in-time
// restore, classifies it as the bucket's own failure to answer.
type unreachableError struct{ msg string }

// Error says what did not answer and what to do.
func (e *unreachableError) Error() string { return e.msg }

// Is reports whether target is store.ErrUnreachable.
func (e *unreachableError) Is(target error) bool { return target == store.ErrUnreachable }

// ErrorCode returns errcode.Unreachable.
func (e *unreachableError) ErrorCode() errcode.Code { return errcode.Unreachable }

// unreachablef is an unreachableError that ends the program with
// exitUnreachable.
func unreachablef(format string, args ...any) error {
	return withCode(exitUnreachable, &unreachableError{fmt.Sprintf(format, args...)})
}

// exitCodeOf gives an error code the agent answered, or a failed backup's
// or export's, its exit code: the backup package's mapping; usage for a
// request the agent could not read, unreachable for one that did not reach
// it in time; and exitError, never success, for a failure without a code.
func exitCodeOf(code string) int {
	switch code {
	case "bad_request":
		return exitUsage
	case "request_timeout":
		return exitUnreachable
	}
	if c := exitFor(errcode.Code(code)); c != exitOK {
		return c
	}
	return exitError
}

// baseURL turns -t's host or host:port into the agent's URL.
func baseURL(target string, useTLS bool) (string, error) {
	if target == "" {
		return "", usageErrorf("name the node with -t HOST[:PORT]")
	}
	if strings.Contains(target, "://") {
		return strings.TrimSuffix(target, "/"), nil
	}
	host := target
	if _, _, err := net.SplitHostPort(target); err != nil {
		host = net.JoinHostPort(strings.Trim(target, "[]"), agentaddr.Port)
	}
	scheme := "http"
	if useTLS {
		scheme = "https"
	}
	return scheme + "://" + host, nil
}

// newClient returns a client of the agent at base. caFile, if set, names
// PEM certificates to trust (the agent's own, if self-signed); insecure
// skips the check.
func newClient(base, token, caFile string, insecure bool) (*client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: insecure}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usageErrorf("read --ca-file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("--ca-file %s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &client{base: base, token: token, http: &http.Client{Transport: tr}}, nil
}

// request sends a request with the token and, if body is not nil, a JSON
// body. An answer of 400 or more becomes an error with the exit code its
// error code maps to; a transport failure is exitUnreachable.
func (c *client) request(ctx context.Context, method, path string, body any, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, usageErrorf("bad node address %q: %v", c.base, err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, unreachablef("cannot reach the agent at %s: %v; check -t and that keepslotd runs there", c.base, errors.Unwrap(err))
	}
	if resp.StatusCode < 400 {
		return resp, nil
	}
	defer resp.Body.Close()
	ae := &apiError{Status: resp.StatusCode}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(ae); err != nil || ae.Code == "" {
		ae.Code, ae.Message = "http", fmt.Sprintf("the agent answered %s", resp.Status)
	}
	if ae.Code == "unauthorized" && c.token == "" {
		ae.Message = "no token given: use --token, $KEEPSLOT_TOKEN or --token-file (keepslotd keeps it in DATA/token); the agent says: " + ae.Message
	}
	return nil, withCode(exitCodeOf(ae.Code), ae)
}

// call sends a request and decodes the JSON answer into out (nil: none
// expected), and returns the answer's bytes as sent.
func (c *client) call(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	resp, err := c.request(ctx, method, path, body, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, unreachablef("read the agent's answer: %v", err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("the agent's answer is not the JSON expected: %w", err)
		}
	}
	return bytes.TrimSpace(b), nil
}

package main

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/keepslot/keepslot/errcode"
)

// How an error becomes an answer: its HTTP status and code, and a message
// capped in length.

// writeErr answers with err's status and code, as errcode.Of classifies
// it. keepslot's errors say what happened and what to do, and never hold a
// password.
func writeErr(w http.ResponseWriter, err error) {
	code := errcode.Of(err)
	msg := err.Error()
	if code == errcode.EmptyPassword && !errors.Is(err, errDrillPassword) {
		msg = `a backup needs a password: send {"password":"…"} in the request body`
	}
	writeError(w, httpStatus(code), string(code), msg)
}

// httpStatus is the HTTP status the agent answers with for an error code:
// 400 for a request that cannot succeed as sent, 404 for no backup, 409 for
// a slot in the wrong state, a node that is not one keepslot backs up (a
// mongos or a sharded cluster's member), or a source that changed while it
// was read, 422 for a backup that does not open or a drill that failed, 502
// and 503 for a database that refuses or does not answer, 507 for too little
// space (on the slot's disk, or in the server's oplog).
func httpStatus(c errcode.Code) int {
	switch c {
	case errcode.OK:
		return http.StatusOK
	case errcode.EmptyPassword, errcode.Invalid:
		return http.StatusBadRequest
	case errcode.NoBackup:
		return http.StatusNotFound
	case errcode.NotBackupNode, errcode.InProgress, errcode.SlotOccupied, errcode.Exists, errcode.DuplicateKey,
		errcode.SourceChanged, errcode.Sharded:
		return http.StatusConflict
	case errcode.WrongPassword, errcode.Corrupt, errcode.CountMismatch, errcode.DrillFailed:
		return http.StatusUnprocessableEntity
	case errcode.Unauthorized:
		return http.StatusBadGateway
	case errcode.Unreachable, errcode.Cancelled, errcode.Interrupted:
		return http.StatusServiceUnavailable
	case errcode.InsufficientSpace, errcode.OplogRollover:
		return http.StatusInsufficientStorage
	default:
		return http.StatusInternalServerError
	}
}

type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// writeError answers with an error body. Every error answer goes through
// it, and the message it sends is capped (capMessage): an error that quotes
// what a client sent, a name in the path say, does not send it all back.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: code, Message: capMessage(msg)})
}

// Caps on what an error answer echoes.
const (
	// maxEcho is the most bytes of a client's input, a name or a path,
	// that a message quotes (echo).
	maxEcho = 64
	// maxMessage is the most bytes of a message: a longer one keeps its
	// first maxMessage/2 bytes and its last maxMessage/4, which say what
	// happened and what to do, and says how much it leaves out.
	maxMessage = 1 << 10
)

// echo quotes s, a client's input, for a message: at most maxEcho bytes of
// it, then how long it is.
func echo(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.Quote(runeCut(s, maxEcho)), len(s))
}

// capMessage returns msg, or, if it is longer than maxMessage bytes, its
// head and tail with the number of bytes left out between.
func capMessage(msg string) string {
	if len(msg) <= maxMessage {
		return msg
	}
	head := runeCut(msg, maxMessage/2)
	tail := msg[len(msg)-maxMessage/4:]
	for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	return fmt.Sprintf("%s [... %d bytes left out ...] %s", head, len(msg)-len(head)-len(tail), tail)
}

// runeCut returns s's first n bytes, fewer if the n-th is inside a rune.
func runeCut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

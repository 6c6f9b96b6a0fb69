package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/slot"
)

// The handlers of the backups' and the role's endpoints, and the JSON they
// read and write.

// slotHandler serves one Backupper's verbs.
type slotHandler struct{ b slot.Backupper }

type message struct {
	Message string `json:"message"`
}

// statusResponse is the appliance's status JSON with the full status
// beside it.
type statusResponse struct {
	slot.Appliance
	Status slot.Status `json:"status"`
}

func (h slotHandler) start(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Password string `json:"password"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if err := h.b.Start(r.Context(), []byte(req.Password)); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, message{"Backup in progress."})
}

func (h slotHandler) status(w http.ResponseWriter, r *http.Request) {
	var (
		st  slot.Status
		err error
	)
	if r.URL.Query().Has("wait") {
		st, err = h.b.Wait(r.Context())
	} else {
		st, err = h.b.Status(r.Context())
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, statusResponse{Appliance: st.Appliance(), Status: st})
}

// file serves the stored backup as stored (encrypted). http.ServeContent
// answers Range and If-Range requests, so an interrupted download resumes;
// the md5 is the ETag, so a resume against a different backup restarts.
func (h slotHandler) file(w http.ResponseWriter, r *http.Request) {
	obj, err := h.b.Open(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	defer obj.Close()
	info := obj.Info()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+retrievedName+`"`)
	w.Header().Set("ETag", `"`+info.MD5+`"`)
	w.Header().Set("X-Content-MD5", info.MD5)
	w.Header().Set("X-Backup-Name", info.Name)
	capRanges(r)
	http.ServeContent(w, r, "", info.Created, obj)
}

func (h slotHandler) delete(w http.ResponseWriter, r *http.Request) {
	if err := h.b.Delete(r.Context()); err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, message{"Backup deleted."})
}

// cancel stops the running backup, or export, and waits until it has
// cleaned up; the message says what it stopped, if anything.
func (h slotHandler) cancel(w http.ResponseWriter, r *http.Request) {
	before, err := h.b.Status(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	if err := h.b.Cancel(r.Context()); err != nil {
		writeErr(w, err)
		return
	}
	after, err := h.b.Status(r.Context())
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, message{cancelMessage(before, after)})
}

// cancelMessage says what a cancel did, from the statuses before and after.
func cancelMessage(before, after slot.Status) string {
	exporting := func(st slot.Status) bool { return st.Export != nil && st.Export.State == slot.ExportInProgress }
	switch {
	case before.State == slot.StateInProgress && after.State == slot.StateFailed && after.Code == errcode.Cancelled:
		return "Backup cancelled."
	case before.State == slot.StateInProgress:
		return "The backup ended before it could be cancelled: " + after.Message()
	case exporting(before) && after.Export != nil && after.Export.Code == errcode.Cancelled:
		return "Export cancelled."
	case exporting(before):
		return "The export ended before it could be cancelled."
	default:
		return "No backup or export in progress; nothing to cancel."
	}
}

type roleHandler struct {
	role *slot.Role
	log  *slog.Logger
}

type roleBody struct {
	Backup *bool `json:"backup"`
}

type roleResponse struct {
	Backup  bool   `json:"backup"`
	Message string `json:"message"`
}

func (h roleHandler) get(w http.ResponseWriter, r *http.Request) {
	ok, err := h.role.IsBackup()
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, roleResponse{Backup: ok, Message: roleMessage(ok)})
}

func (h roleHandler) set(w http.ResponseWriter, r *http.Request) {
	var req roleBody
	if !readJSON(w, r, &req) {
		return
	}
	if req.Backup == nil {
		writeError(w, http.StatusBadRequest, "bad_request", `the body must be {"backup":true} or {"backup":false}`)
		return
	}
	set := h.role.Unset
	if *req.Backup {
		set = h.role.Set
	}
	if err := set(); err != nil {
		writeErr(w, err)
		return
	}
	h.log.Info("backup role changed", "backup", *req.Backup)
	writeJSON(w, http.StatusOK, roleResponse{Backup: *req.Backup, Message: roleMessage(*req.Backup)})
}

func roleMessage(ok bool) string {
	if ok {
		return "This node is in the backup role."
	}
	return "This node is not in the backup role."
}

// capRanges drops r's Range header if it asks for more than maxRanges
// ranges, so that http.ServeContent sends the whole file.
func capRanges(r *http.Request) {
	spec, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes=")
	if !ok {
		return
	}
	n := 0
	for rg := range strings.SplitSeq(spec, ",") {
		if strings.TrimSpace(rg) != "" {
			n++
		}
	}
	if n > maxRanges {
		r.Header.Del("Range")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// readJSON decodes a small JSON body into v, or answers 400 (408 if it
// did not arrive within the read timeout, 413 if it is too large) and
// returns false.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			writeError(w, http.StatusRequestTimeout, "request_timeout",
				"the request body did not arrive within the agent's read timeout; send it at once, or raise keepslotd's -read-timeout")
			return false
		case errors.As(err, &tooLarge):
			writeError(w, http.StatusRequestEntityTooLarge, "bad_request",
				fmt.Sprintf("the request body is larger than %d KiB; it holds only a small JSON object, such as {\"password\":\"…\"}", maxBody>>10))
			return false
		}
		// The decoder's error may quote the body, which may hold a
		// password: say only what is wrong with its shape.
		writeError(w, http.StatusBadRequest, "bad_request", "the request body must be a JSON object, such as {\"password\":\"…\"}")
		return false
	}
	return true
}

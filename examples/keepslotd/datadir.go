package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/keepslot/keepslot/examples/internal/secretfile"
	"github.com/keepslot/keepslot/store"
)

// The agent's data directory: its permissions, the stores in it and the
// bearer token.

// errDataDir: the data directory cannot be used.
var errDataDir = errors.New("unusable data directory")

// prepareDataDir creates the data directory dir, open to its owner only
// (0700): it holds the token and the backups. A directory that exists
// with other permissions is set to 0700, with a warning in the log.
func prepareDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the data directory %s: %w; name a directory keepslotd may create with -data (%w)", dir, err, errDataDir)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("the data directory %s: %w (%w)", dir, err, errDataDir)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the data directory %s is not a directory; name a directory with -data (%w)", dir, errDataDir)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("the data directory %s has mode %s, and it holds the token and the backups: %w; run chmod 700 on it as its owner (%w)",
				dir, perm, err, errDataDir)
		}
		log.Warn("the data directory was open to others, or not writable by its owner; set it to owner-only",
			"dir", dir, "from", perm, "to", os.FileMode(0o700))
	}
	return nil
}

func storeIn(data, name string) (store.Store, error) {
	return store.Dir(filepath.Join(data, name))
}

// secretPaths are the sensitive backup's sources: -secrets, or DATA/secrets
// (created empty if missing).
func secretPaths(o options) []string {
	if o.secrets != "" {
		return strings.Split(o.secrets, ",")
	}
	dir := filepath.Join(o.data, "secrets")
	_ = os.MkdirAll(dir, 0o700)
	return []string{dir}
}

// loadOrCreateToken reads the bearer token from file, a secret file (see
// secretfile.Read: regular, 0600, at most 4 KiB), or creates one (256
// random bits, hex) in a new 0600 file.
func loadOrCreateToken(file string) (string, error) {
	b, err := secretfile.Read(file)
	if err == nil {
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("the token file %s is empty; delete it to create a new token", file)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the token: %w", err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	token := hex.EncodeToString(raw)
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create the token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write the token: %w", err)
	}
	return token, f.Close()
}

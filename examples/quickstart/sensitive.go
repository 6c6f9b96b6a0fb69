package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keepslot/keepslot/sensitive"
	"github.com/keepslot/keepslot/slot"
	"github.com/keepslot/keepslot/store"
)

// sensitiveCycle backs up a sample key file into the sensitive backup's own
// slot, under its own password, retrieves it, restores it into another
// directory and checks that the key came back byte for byte.
func (q *quickstart) sensitiveCycle(ctx context.Context) error {
	keys := filepath.Join(q.work, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		return err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	keyFile := filepath.Join(keys, "master.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		return err
	}

	dir, err := store.Dir(filepath.Join(q.work, "sensitive-slot"))
	if err != nil {
		return err
	}
	s, err := sensitive.New(sensitive.Config{
		Sources:  []sensitive.Source{sensitive.Files(keys)},
		Store:    dir,
		StateDir: filepath.Join(q.work, "state"), // the role set for the main backup holds here too
		Logger:   quietLogger(),
	})
	if err != nil {
		return err
	}
	q.sens = s

	sensitivePassword := []byte("another password for the keys")
	if err := s.Start(ctx, sensitivePassword); err != nil {
		return err
	}
	fmt.Println("Backup in progress.")
	st, err := s.Wait(ctx)
	if err != nil {
		return err
	}
	if st.State != slot.StateReady {
		return fmt.Errorf("the sensitive backup ended %s: %s", st.State, st.Error)
	}
	fmt.Printf("backup-sensitive-status: %s\n", st.ApplianceJSON())

	file := filepath.Join(q.work, "backup-sensitive-retrieve.tar.gz.enc")
	f, err := os.OpenFile(file, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := s.Retrieve(ctx, f)
	if err != nil {
		return err
	}
	if info.MD5 != st.MD5 {
		return fmt.Errorf("md5 mismatch: retrieved %s, the status says %s", info.MD5, st.MD5)
	}
	fmt.Printf("backup-sensitive-retrieve: %s (%d bytes)\n", file, info.Size)

	restored := filepath.Join(q.work, "restored-keys")
	rep, err := sensitive.Restore(ctx, f, info.Size, sensitivePassword, restored, nil)
	if err != nil {
		return err
	}
	for _, rf := range rep.Files {
		fmt.Printf("  restored %s (%d bytes, sha256 %.16s…)\n", rf.Name, rf.Size, rf.SHA256)
	}
	same, err := equalFiles(keyFile, filepath.Join(restored, "keys", "master.key"))
	if err != nil {
		return err
	}
	if !same || len(rep.Files) != 1 {
		return fmt.Errorf("the restored key differs from the original")
	}
	fmt.Println("the restored key matches the original")
	return nil
}

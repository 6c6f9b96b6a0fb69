package backup_test

import (
	"fmt"
	"log"
	"os"

	"github.com/keepslot/keepslot/backup"
)

// The appliance's set-as-backup: a node must be in the backup role before
// it can be backed up.
func ExampleRole() {
	stateDir, _ := os.MkdirTemp("", "node")
	defer os.RemoveAll(stateDir)

	role := backup.NewRole(stateDir)
	fmt.Println(role.Check())
	if err := role.Set(); err != nil {
		log.Fatal(err)
	}
	ok, _ := role.IsBackup()
	fmt.Println(ok)
	// Output:
	// this node is not in the backup role; run set-as-backup first
	// true
}

// The appliance's backup-status JSON.
func ExampleStatus_ApplianceJSON() {
	st := backup.Status{State: backup.StateReady, Name: "backup-2026-11-22T10-04-05Z.tar.gz", MD5: "9e107d9d372bb6826bd81d3542a419d6"}
	fmt.Println(string(st.ApplianceJSON()))
	fmt.Println(string(backup.Status{State: backup.StateInProgress}.ApplianceJSON()))
	// Output:
	// {"message":"Backup found","arguments":{"md5":"9e107d9d372bb6826bd81d3542a419d6","name":"backup-2026-11-22T10-04-05Z.tar.gz"}}
	// {"message":"Backup in progress"}
}

// Restore options like mongorestore's --nsFrom and --nsTo.
func ExampleRenameNamespace() {
	renames := []backup.Rename{{From: "app.*", To: "app_restored.*"}}
	fmt.Println(backup.RenameNamespace("app.users", renames))
	fmt.Println(backup.RenameNamespace("crm.users", renames))
	// Output:
	// app_restored.users
	// crm.users
}

// Classifying an error for a program: an HTTP API and a command-line tool
// answer the same failure with one code.
func ExampleCode() {
	err := fmt.Errorf("backup: %w", backup.ErrSlotOccupied)
	code := backup.Code(err)
	fmt.Println(code, code.HTTPStatus(), code.ExitCode())
	// Output:
	// slot_occupied 409 4
}

package slot_test

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/slot"
)

// The appliance's set-as-backup: a node must be in the backup role before
// it can be backed up.
func ExampleRole() {
	stateDir, _ := os.MkdirTemp("", "node")
	defer os.RemoveAll(stateDir)

	role := slot.NewRole(stateDir)
	fmt.Println(role.Check())
	if err := role.Set(); err != nil {
		log.Fatal(err)
	}
	ok, _ := role.IsBackup()
	fmt.Println(ok)
	// Output:
	// slot: this node is not in the backup role; run set-as-backup first
	// true
}

// The appliance's backup-status JSON.
func ExampleStatus_ApplianceJSON() {
	st := slot.Status{State: slot.StateReady, Name: "backup-2026-11-22T10-04-05Z.tar.gz", MD5: "9e107d9d372bb6826bd81d3542a419d6"}
	fmt.Println(string(st.ApplianceJSON()))
	fmt.Println(string(slot.Status{State: slot.StateInProgress}.ApplianceJSON()))
	// Output:
	// {"message":"Backup found","arguments":{"md5":"9e107d9d372bb6826bd81d3542a419d6","name":"backup-2026-11-22T10-04-05Z.tar.gz"}}
	// {"message":"Backup in progress"}
}

// A ready backup that captured the oplog tells its consistency point:
// restored with replay, its data is as of Oplog.End.
func ExampleStatus_ConsistentAt() {
	end := time.Date(2026, 11, 22, 10, 4, 5, 0, time.UTC)
	st := slot.Status{
		State: slot.StateReady,
		Name:  "backup-2026-11-22T10-00-00Z.tar.gz",
		Oplog: &archive.OplogSpan{
			Start:   bson.Timestamp{T: uint32(end.Add(-4 * time.Minute).Unix()), I: 1},
			End:     bson.Timestamp{T: uint32(end.Unix()), I: 7},
			Entries: 1234,
		},
	}
	fmt.Println(st.ConsistentAt())
	b, _ := json.Marshal(st.Oplog)
	fmt.Println(string(b))
	// Output:
	// 2026-11-22 10:04:05 +0000 UTC
	// {"start":{"t":1795341605,"i":1},"end":{"t":1795341845,"i":7},"entries":1234}
}

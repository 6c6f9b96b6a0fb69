package backup_test

import (
	"encoding/json"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/backup"
)

// A ready backup that captured the oplog tells its consistency point:
// restored with replay, its data is as of Oplog.End.
func ExampleStatus_ConsistentAt() {
	end := time.Date(2026, 11, 22, 10, 4, 5, 0, time.UTC)
	st := backup.Status{
		State: backup.StateReady,
		Name:  "backup-2026-11-22T10-00-00Z.tar.gz",
		Oplog: &backup.OplogSpan{
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

package oplog

import "github.com/keepslot/keepslot/errcode"

// ErrNoOplog: the server keeps no oplog (a standalone server), or an empty
// one, where a backup's capture or a slicer needs one. Packages backup and
// pitr export it as their ErrNoOplog: one value, which errors.Is tells
// apart from restore.ErrNoOplog (a backup that holds none).
var ErrNoOplog = errcode.New(errcode.Invalid, "no oplog")

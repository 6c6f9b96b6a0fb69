package pitr

import (
	"context"
	"errors"
	"fmt"

	"github.com/keepslot/keepslot/store"
)

// Prune deletes the node's slices that no base backup on the remote needs
// (run it after the backups' retention, store.Prune): those that end at or
// before the oldest base backup's consistency point, whose entries every
// base backup holds already. With no base backup on the remote it keeps
// every slice. With dryRun it deletes nothing and reports what it would.
// It goes on past a failed delete and returns every failure.
func Prune(ctx context.Context, at Location, dryRun bool) (store.PruneResult, error) {
	res := store.PruneResult{DryRun: dryRun, Keep: []string{}, Delete: []string{}}
	cov, err := Scan(ctx, at)
	if err != nil {
		return res, err
	}
	var errs []error
	for _, s := range cov.Slices {
		if len(cov.Bases) == 0 || next(cov.Bases[0].Oplog.End).Before(s.Until) {
			res.Keep = append(res.Keep, s.Key)
			continue
		}
		if !dryRun {
			if err := at.Remote.Delete(ctx, s.Key); err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, fmt.Errorf("pitr: delete the slice %s: %w", s.Key, err))
				continue
			}
		}
		res.Delete = append(res.Delete, s.Key)
	}
	return res, errors.Join(errs...)
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/keepslot/keepslot/archive"
	"github.com/keepslot/keepslot/conn"
	"github.com/keepslot/keepslot/errcode"
	"github.com/keepslot/keepslot/namespace"
	"github.com/keepslot/keepslot/restore"
	"github.com/keepslot/keepslot/sensitive"
)

// restoreFlags are restore's options, named after mongorestore's.
type restoreFlags struct {
	pw               passwordFlags
	uri              string
	nsFrom, nsTo     []string
	include, exclude []string
	drop, dryRun     bool
	parallel, batch  int
	sensitive        bool
	dir              string
	overwrite        bool
	fromRemote       string
	oplogReplay      replayFlag
	oplogLimit       string
	skipUsers        bool
	skipDuplicates   bool
	toTime           string
	opTimeout        time.Duration
	allowNoManifest  bool
}

// replayFlag is --oplog-replay: auto, on (restore.ReplayRequired) or off
// (restore.ReplayNever).
type replayFlag restore.Replay

var replayFlags = map[string]restore.Replay{"auto": restore.ReplayAuto, "on": restore.ReplayRequired, "off": restore.ReplayNever}

func (r replayFlag) MarshalText() ([]byte, error) {
	for text, v := range replayFlags {
		if v == restore.Replay(r) {
			return []byte(text), nil
		}
	}
	return nil, fmt.Errorf("%v is not a value of --oplog-replay", restore.Replay(r))
}

func (r *replayFlag) UnmarshalText(b []byte) error {
	v, ok := replayFlags[string(b)]
	if len(b) == 0 {
		v, ok = restore.ReplayAuto, true
	}
	if !ok {
		return fmt.Errorf("%q is not auto, on or off", b)
	}
	*r = replayFlag(v)
	return nil
}

// Why restore's modes exclude each other, as its usage errors say.
const (
	whyToTime     = "--to-time restores the node's bucket, through the agent at -t: it takes no FILE, --sensitive, --from-remote or --oplog-limit"
	whyFromRemote = "--from-remote takes the place of FILE, and is for the main backup only"
	whyNoManifest = "--allow-missing-manifest is for a FILE (or --from-remote copy) that is a tarred mongodump directory, not for --sensitive or --to-time, whose backups are keepslot's own"
)

// restoreCmd restores in one of four modes: a FILE (--allow-missing-manifest
// for a tarred mongodump directory), a sensitive FILE into a directory
// (--sensitive), the node's copy of a name on its bucket (--from-remote),
// or the node as of a moment (--to-time). The flags of one mode that
// another cannot take are cobra flag groups; only a FILE, an argument, is
// checked by hand.
func (a *app) restoreCmd() *cobra.Command {
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore [FILE]",
		Short: "Restore a retrieved backup file (default " + mainKind.file + ") into MongoDB, or with --sensitive into a directory",
		Long: "Restore a retrieved backup file into the MongoDB server at --uri. The whole file is\n" +
			"authenticated first: a wrong password or a damaged file writes nothing (exit 6).\n" +
			"--ns-from/--ns-to rename namespaces as mongorestore's --nsFrom/--nsTo do, in pairs\n" +
			"('app.*' to 'app_restored.*'); --ns-include/--ns-exclude select them by pattern.\n" +
			"With --sensitive, restore a retrieved sensitive backup (default " + sensitiveKind.file + ")\n" +
			"into --dir; files are written 0600.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("restore takes one file, got %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && f.toTime != "":
				return usageErrorf("%s", whyToTime)
			case len(args) == 1 && f.fromRemote != "":
				return usageErrorf("%s", whyFromRemote)
			case f.toTime != "":
				return a.restoreMain(cmd, f, "")
			case f.fromRemote != "":
				file, cleanup, err := a.fetchForRestore(cmd, f.fromRemote)
				if err != nil {
					return err
				}
				defer cleanup()
				return a.restoreMain(cmd, f, file)
			}
			file := mainKind.file
			if f.sensitive {
				file = sensitiveKind.file
			}
			if len(args) == 1 {
				file = args[0]
			}
			if f.sensitive {
				return a.restoreSensitive(cmd, f, file)
			}
			return a.restoreMain(cmd, f, file)
		},
	}
	f.register(cmd)
	exclusive(cmd, whyNoManifest, "allow-missing-manifest", "sensitive")
	exclusive(cmd, whyNoManifest, "allow-missing-manifest", "to-time")
	exclusive(cmd, whyToTime, "to-time", "sensitive")
	exclusive(cmd, whyToTime, "to-time", "from-remote")
	exclusive(cmd, whyToTime, "to-time", "oplog-limit")
	exclusive(cmd, whyFromRemote, "from-remote", "sensitive")
	together(cmd, "--ns-from and --ns-to come in pairs", "ns-from", "ns-to")
	return cmd
}

// register defines restore's flags on cmd.
func (f *restoreFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	f.pw.add(cmd)
	fl.StringVar(&f.uri, "uri", os.Getenv("MONGODB_URI"), "the MongoDB server to restore into (default $MONGODB_URI)")
	fl.StringArrayVar(&f.nsFrom, "ns-from", nil, "rename namespaces matching this pattern (with --ns-to; repeatable)")
	fl.StringArrayVar(&f.nsTo, "ns-to", nil, "…into this one")
	fl.StringArrayVar(&f.include, "ns-include", nil, "restore only namespaces matching this pattern (repeatable)")
	fl.StringArrayVar(&f.exclude, "ns-exclude", nil, "skip namespaces matching this pattern (repeatable)")
	fl.BoolVar(&f.drop, "drop", false, "drop each target collection before restoring into it")
	fl.BoolVar(&f.dryRun, "dry-run", false, "check the file and report what would be restored, writing nothing")
	fl.IntVar(&f.parallel, "parallel", 4, "insert batches in flight")
	fl.IntVar(&f.batch, "batch-size", 1000, "documents per insert")
	fl.BoolVar(&f.sensitive, "sensitive", false, "the file is a sensitive backup: restore its files into --dir")
	fl.StringVar(&f.dir, "dir", "", "with --sensitive: the directory to restore the files into")
	fl.BoolVar(&f.overwrite, "overwrite", false, "with --sensitive: replace files that exist")
	fl.TextVar(&f.oplogReplay, "oplog-replay", replayFlag(restore.ReplayAuto), "replay the oplog the backup captured, for a restore consistent as of its end: auto (when it has one), on (fail without one) or off")
	fl.StringVar(&f.oplogLimit, "oplog-limit", "", "replay only the oplog entries before this timestamp, SECONDS[:ORDINAL] as mongorestore's --oplogLimit")
	fl.BoolVar(&f.skipUsers, "skip-users-and-roles", false, "leave out the users and roles the backup holds")
	fl.BoolVar(&f.skipDuplicates, "skip-duplicates", false, "go on past documents the target already holds, keeping the target's, as mongorestore does; without it the first one fails the restore (exit 4)")
	fl.DurationVar(&f.opTimeout, "operation-timeout", conn.DefaultOperationTimeout, "the longest the restore waits for the server to answer one request (a batch of inserts, a command) before it fails as unreachable (exit 8); an index build runs as long as the server answers")
	fl.BoolVar(&f.allowNoManifest, "allow-missing-manifest", false, "restore a FILE that holds a tarred mongodump directory (encrypted as keepslot's backups are) without keepslot's manifest.json; its contents are then not checked against a manifest, so a tar cut at an entry's boundary goes unnoticed. Without it such a file is refused before anything is written (exit 6)")
	fl.StringVar(&f.fromRemote, "from-remote", "", "restore the node's copy of this name from its S3 bucket (via the agent at -t) instead of a FILE")
	fl.StringVar(&f.toTime, "to-time", "", "restore the node as of this moment, from its bucket (via the agent at -t, keepslotd -pitr): a time such as 2026-12-02T17:59:00Z, its whole second included, or SECONDS[:ORDINAL], the oplog before it")
}

func (a *app) restoreMain(cmd *cobra.Command, f restoreFlags, file string) error {
	opts, err := restoreOptions(f)
	if err != nil {
		return err
	}
	if f.toTime != "" {
		return a.restoreToTime(cmd, f, opts)
	}
	src, size, password, err := openWithPassword(file, f)
	if err != nil {
		return err
	}
	defer src.Close()
	rep, err := restore.Run(cmd.Context(), src, size, password, opts)
	if err != nil {
		return restoreError(noManifestHint(err))
	}
	if a.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		return nil
	}
	printReport(cmd, rep)
	return nil
}

// restoreOptions checks the flags of a restore into a server and turns
// them into restore's options.
func restoreOptions(f restoreFlags) (*restore.Options, error) {
	if len(f.nsFrom) != len(f.nsTo) {
		return nil, usageErrorf("--ns-from and --ns-to come in pairs; got %d and %d", len(f.nsFrom), len(f.nsTo))
	}
	if f.uri == "" && !f.dryRun {
		return nil, usageErrorf("name the server to restore into with --uri (or $MONGODB_URI), or use --dry-run")
	}
	if f.opTimeout <= 0 {
		return nil, usageErrorf("--operation-timeout must be positive; got %s", f.opTimeout)
	}
	limit, err := parseTimestamp(f.oplogLimit)
	if err != nil {
		return nil, usageErrorf("--oplog-limit: %v", err)
	}
	opts := &restore.Options{
		Conn:              conn.Config{URI: f.uri, OperationTimeout: f.opTimeout},
		Filter:            namespace.Filter{Include: f.include, Exclude: f.exclude},
		Drop:              f.drop,
		DryRun:            f.dryRun,
		Parallel:          f.parallel,
		BatchSize:         f.batch,
		OplogReplay:       restore.Replay(f.oplogReplay),
		OplogLimit:        limit,
		SkipUsersAndRoles: f.skipUsers,
		SkipDuplicates:    f.skipDuplicates,
		Logger:            quietLogger(),
	}
	opts.Renames = renames(f)
	if f.allowNoManifest {
		opts.Formats = []archive.Format{archive.TarFormat{AllowMissingManifest: true}}
	}
	return opts, nil
}

// noManifestHint adds to the archive's refusal of a tar without
// manifest.json the flag that restores one.
func noManifestHint(err error) error {
	if msg := err.Error(); errors.Is(err, archive.ErrCorrupt) && strings.Contains(msg, "manifest.json") &&
		!strings.Contains(msg, "--allow-missing-manifest") {
		return fmt.Errorf("%w; if the file is a tarred mongodump directory, restore it with --allow-missing-manifest", err)
	}
	return err
}

// printReport prints what a restore did, or would do.
func printReport(cmd *cobra.Command, rep *restore.Report) {
	tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FROM\tTO\tDOCUMENTS\tINDEXES")
	for _, ns := range rep.Namespaces {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", ns.From, ns.To, ns.Documents, ns.Indexes)
	}
	_ = tw.Flush()
	verb := "Restored"
	if rep.DryRun {
		verb = "Dry run: would restore"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %d documents in %d namespaces (%d indexes) in %s.\n",
		verb, rep.Documents, len(rep.Namespaces), rep.Indexes, rep.Duration.Round(1e6))
	for _, ns := range rep.Namespaces {
		if ns.Duplicates > 0 {
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %d documents were there already and were kept as they were.\n", ns.To, ns.Duplicates)
		}
	}
	if o := rep.Oplog; o != nil {
		fmt.Fprintf(cmd.OutOrStdout(), "Oplog: %d entries replayed (%d inserts, %d updates, %d deletes, %d commands), up to %d:%d.\n",
			o.Entries, o.Inserts, o.Updates, o.Deletes, o.Commands, o.Last.T, o.Last.I)
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: %s\n", n)
	}
}

// parseTimestamp reads SECONDS[:ORDINAL], as mongorestore's --oplogLimit
// takes it; "" is the zero timestamp (no limit).
func parseTimestamp(s string) (bson.Timestamp, error) {
	if s == "" {
		return bson.Timestamp{}, nil
	}
	sec, ord, _ := strings.Cut(s, ":")
	t, err := strconv.ParseUint(sec, 10, 32)
	if err != nil {
		return bson.Timestamp{}, fmt.Errorf("%q is not SECONDS[:ORDINAL]", s)
	}
	var i uint64
	if ord != "" {
		if i, err = strconv.ParseUint(ord, 10, 32); err != nil {
			return bson.Timestamp{}, fmt.Errorf("%q is not SECONDS[:ORDINAL]", s)
		}
	}
	return bson.Timestamp{T: uint32(t), I: uint32(i)}, nil
}

func (a *app) restoreSensitive(cmd *cobra.Command, f restoreFlags, file string) error {
	if f.dir == "" && !f.dryRun {
		return usageErrorf("name the directory to restore into with --dir, or use --dry-run")
	}
	src, size, password, err := openWithPassword(file, f)
	if err != nil {
		return err
	}
	defer src.Close()
	rep, err := sensitive.Restore(cmd.Context(), src, size, password, f.dir, &sensitive.RestoreOptions{Overwrite: f.overwrite, DryRun: f.dryRun})
	if err != nil {
		return restoreError(err)
	}
	if a.json {
		b, _ := json.Marshal(rep)
		fmt.Fprintf(cmd.OutOrStdout(), "%s\n", b)
		return nil
	}
	for _, rf := range rep.Files {
		fmt.Fprintf(cmd.OutOrStdout(), "%s\t%d bytes\tsha256 %s\n", rf.Name, rf.Size, rf.SHA256)
	}
	verb := "Restored"
	if rep.DryRun {
		verb = "Dry run: would restore"
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s %d files into %s.\n", verb, len(rep.Files), f.dir)
	for _, d := range rep.Removed {
		fmt.Fprintf(cmd.ErrOrStderr(), "note: removed %s, the plaintext an interrupted restore left in %s\n", d, f.dir)
	}
	return nil
}

// quietLogger keeps the library's info logs out of the command's output.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// openWithPassword opens the retrieved file, with its size, and reads the
// password for it.
func openWithPassword(file string, f restoreFlags) (*os.File, int64, []byte, error) {
	src, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil, usageErrorf("no file %s: name a retrieved backup file, or retrieve one first (backup-retrieve, backup-sensitive-retrieve)", file)
	}
	if err != nil {
		return nil, 0, nil, err
	}
	fi, err := src.Stat()
	if err == nil {
		var password []byte
		if password, err = f.pw.read(false); err == nil {
			return src, fi.Size(), password, nil
		}
	}
	src.Close()
	return nil, 0, nil, err
}

// restoreError gives a restore's error its exit code, as errcode.Of
// classifies it, or else the exit code that keepslotctl gave the error
// inside it (one of the agent's, for a point-in-time restore).
func restoreError(err error) error {
	if err == nil {
		return nil
	}
	code := exitFor(errcode.Of(err))
	var ce *codedError
	if code == exitError && errors.As(err, &ce) {
		code = ce.code
	}
	return withCode(code, err)
}

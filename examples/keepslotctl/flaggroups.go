package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// Flags that go apart or together are cobra's flag groups, each with why,
// which a usage error about it says: checkFlagGroups runs before every
// command.

// groupAnnotation begins the annotation of a command that says why the
// flags of a group go apart or together; the rest of the key is the group,
// as cobra names it in its error.
const groupAnnotation = "keepslotctl-flag-group:"

// exclusive marks flags of cmd that exclude each other, saying why.
func exclusive(cmd *cobra.Command, why string, flags ...string) {
	cmd.MarkFlagsMutuallyExclusive(flags...)
	annotateGroup(cmd, why, flags)
}

// together marks flags of cmd that are given all or none, saying why.
func together(cmd *cobra.Command, why string, flags ...string) {
	cmd.MarkFlagsRequiredTogether(flags...)
	annotateGroup(cmd, why, flags)
}

func annotateGroup(cmd *cobra.Command, why string, flags []string) {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[groupAnnotation+"["+strings.Join(flags, " ")+"]"] = why
}

// checkFlagGroups checks cmd's flag groups before cobra does, so that one
// broken is a usage error (exit 2) that says why its flags go apart or
// together (what cobra found, for a group without a why).
func checkFlagGroups(cmd *cobra.Command, _ []string) error {
	err := cmd.ValidateFlagGroups()
	if err == nil {
		return nil
	}
	for key, why := range cmd.Annotations {
		if group, ok := strings.CutPrefix(key, groupAnnotation); ok && strings.Contains(err.Error(), group) {
			return usageErrorf("%s", why)
		}
	}
	return usageErrorf("%v", err)
}

package keepslot

// Version is keepslot's version, recorded in every archive it writes.
const Version = "0.2.0"

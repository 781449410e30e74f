// Package procstat measures the CPU time of the processes at the ends of CQL
// connections, from /proc/PID/stat and the stat files of their threads, read
// at the report cadence (live capture; the process ids come from the kernel's
// socket counts, package sockcount). It only reads /proc and hands
// analyze.ProcessCPU values to the caller: joining them to connections and
// dividing by requests is analyze's work.
package procstat

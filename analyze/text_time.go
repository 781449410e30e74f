package analyze

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
)

// timeRows is how many connections the text report's time section lists.
const timeRows = 20

// writeTime renders where the busiest connections' time went, and the
// processes at their ends when they were measured.
func (r *Report) writeTime(ew io.Writer) {
	var busy []*ConnReport
	for _, cr := range r.Connections {
		if cr.Timing != nil && cr.Requests >= 100 {
			busy = append(busy, cr)
		}
	}
	if len(busy) > 0 {
		sort.SliceStable(busy, func(i, j int) bool { return busy[i].Requests > busy[j].Requests })
		fmt.Fprintf(ew, "\nWhere the time went (outstanding = requests sent and not yet answered, weighted by time; idle = nothing outstanding)\n")
		tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "client\t server\t span s\t outstanding mean/peak\t at 8+\t idle\t idle gaps\t gap mean µs\t server µs\t client reaction µs\t client CPU\t\n")
		for i, cr := range busy {
			if i == timeRows {
				fmt.Fprintf(tw, "(%d more)\t\t\t\t\t\t\t\t\t\t\t\n", len(busy)-timeRows)
				break
			}
			t := cr.Timing
			cpu := "-"
			if p := cr.ClientProcess; p != nil && p.WindowS*1e9 >= minProcWindow {
				cpu = fmt.Sprintf("%.2f cores, thread %.0f%%", p.Cores, 100*p.BusiestThreadShare)
				if p.Requests > 0 {
					cpu = fmt.Sprintf("%.2f cores, %.1f µs/req, thread %.0f%%", p.Cores, p.CPUPerReqUS, 100*p.BusiestThreadShare)
				}
			}
			fmt.Fprintf(tw, "%s\t %s\t %.2f\t %.1f/%d\t %.0f%%\t %.0f%%\t %d\t %.0f\t %.0f\t %.0f\t %s\t\n",
				cr.Client, cr.Server, t.SpanS, t.OutstandingMean, t.OutstandingPeak, 100*t.atLeast8, 100*t.IdleShare,
				t.IdleGaps.Count, t.IdleGaps.MeanUS, t.ServerTimeUS, t.ClientReaction.MeanUS, cpu)
		}
		tw.Flush()
	}
	procs := processList(r.Connections)
	if len(procs) == 0 {
		return
	}
	fmt.Fprintf(ew, "\nProcesses at the ends of CQL connections (CPU while capturing, from /proc)\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "pid\t process\t window s\t CPU s\t cores\t requests\t CPU µs/request\t busiest thread\t threads\t CQL conns\t other sockets\t\n")
	for _, p := range procs {
		name := p.Comm
		if p.Exited {
			name += " (exited)"
		}
		fmt.Fprintf(tw, "%d\t %s\t %.1f\t %.2f\t %.2f\t %d\t %.1f\t %s %.0f%%\t %d\t %d\t %d\t\n", p.PID, name, p.WindowS, p.CPUS, p.Cores,
			p.Requests, p.CPUPerReqUS, p.BusiestThread, 100*p.BusiestThreadShare, p.Threads, p.CQLConnections, p.OtherSockets)
	}
	tw.Flush()
}

# SPDX-License-Identifier: Apache-2.0
# Plots for tools/bench/modes.sh. Called with -e "dir='...'; out='...'; title='...';
# modes='direct bpf-sock ...'; nm=N; a0=C" (a0: the first column of a mode with an agent).
# Series files: column 1 = Services, then one column per mode in the order of modes.
set datafile missing "nan"
set terminal pngcairo size 900,560 font "sans,10"
set key outside right top
set grid
set logscale x
set xrange [xmin:xmax]
set xlabel "Services (10 endpoints each)"

set output out."/rate.png"
set multiplot layout 1,2 title "New connections/s and keepalive requests/s vs Services\n".title
set ylabel "crr conn/s (closed loop)"
set yrange [0:*]
plot for [i=2:nm+1] dir."/rate.dat" using 1:i with linespoints lw 2 title word(modes, i-1)
set ylabel "rr req/s (keepalive)"
plot for [i=2:nm+1] dir."/rate_rr.dat" using 1:i with linespoints lw 2 title word(modes, i-1)
unset multiplot

set output out."/sync.png"
set multiplot layout 1,2 title "Programming: full sync from empty and one Service added\n".title
set logscale y
set yrange [*:*]
set ylabel "agent start to last Service answering, s"
plot for [i=a0:nm+1] dir."/sync.dat" using 1:i with linespoints lw 2 title word(modes, i-1)
set ylabel "one Service added, end to end, ms"
plot for [i=a0:nm+1] dir."/upd.dat" using 1:i with linespoints lw 2 title word(modes, i-1)
unset multiplot
unset logscale y

set output out."/memory.png"
set multiplot layout 1,2 title "Memory after programming\n".title
set ylabel "kernel Slab + VmallocUsed delta, MiB"
set yrange [*:*]
plot for [i=a0:nm+1] dir."/slab.dat" using 1:(column(i) / 1024) with linespoints lw 2 title word(modes, i-1)
set ylabel "BPF map memlock, MiB"
plot for [i=a0:nm+1] dir."/memlock.dat" using 1:(column(i) / 1048576) with linespoints lw 2 title word(modes, i-1)
unset multiplot

unset logscale x
set xrange [*:*]
set output out."/latency.png"
set title "crr latency at a fixed rate (open loop, from the intended start), largest configuration\n".title
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set xlabel "mode"
set ylabel "ms"
set logscale y
set yrange [*:*]
set xtics rotate by -20
plot dir."/lat.dat" using 3:xtic(2) title "request p50", \
     "" using 4 title "request p99", \
     "" using 5 title "request p99.9", \
     "" using 6 title "connect p50", \
     "" using 7 title "connect p99", \
     "" using 8 title "connect p99.9"

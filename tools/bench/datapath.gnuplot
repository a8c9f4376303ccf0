# SPDX-License-Identifier: Apache-2.0
# Plots the datapath benchmark (tools/bench/datapath.sh) into one PNG.
# Variables (gnuplot -e): dir = folder with the .dat tables datapath.sh writes,
# out = PNG path, scales = the scales (space-separated), title = figure title.
# Needs Debian's gnuplot-nox (pngcairo terminal).
set terminal pngcairo size 1500,900 font "DejaVu Sans,10" noenhanced
set output out
set multiplot layout 2,3 title title font ",12"

set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
set key top left
set yrange [0:*]
set linetype 1 lc rgb "#1f77b4"
set linetype 2 lc rgb "#ff7f0e"
set linetype 3 lc rgb "#2ca02c"
set linetype 4 lc rgb "#d62728"

set title "Connections/s, closed loop (connect+req+resp+close)"
set ylabel "connections/s (higher is better)"
set xlabel "Services x 10 endpoints programmed"
plot dir."/closed.dat" using 2:xtic(1) title "ClusterIP (socket LB)", \
     '' using 3 title "direct to backend"

set title "Open loop at a fixed rate: latency from intended start"
set ylabel "ms (lower is better)"
set xlabel "percentile, Services"
set logscale y
set yrange [0.05:*]
plot dir."/open.dat" using 2:xtic(1) title "ClusterIP", '' using 3 title "direct"

set title "Programming from empty (agent start)"
set ylabel "seconds (lower is better)"
set xlabel "Services x 10 endpoints"
set yrange [0.1:*]
plot dir."/program.dat" using 2:xtic(1) title "all frontends in svc4", \
     '' using 3 title "agent's first sync", \
     1 with lines lt 4 dt 2 lw 2 title "goal 1 s"

set title "One endpoint change: API PUT to pinned map"
set ylabel "ms (lower is better)"
set yrange [0.5:*]
plot dir."/change.dat" using 2:xtic(1) title "p50", '' using 3 title "p99", \
     10 with lines lt 4 dt 2 lw 2 title "goal p99 10 ms"

set title "Agent RSS"
set ylabel "MiB (lower is better)"
set yrange [1:*]
plot dir."/rss.dat" using 2:xtic(1) title "programmed", '' using 3 title "after changes", \
     '' using 4 title "after malloc_trim", \
     64 with lines lt 4 dt 2 lw 2 title "goal 64 MiB"

set style data lines
set title "Endpoint change latency CDF"
set xlabel "ms from the PUT to the new svc4 entry"
set ylabel "percentile of changes"
set logscale x
unset logscale y
set yrange [0:100]
set xrange [*:*]
set key bottom right
plot for [s in scales] dir."/cdf-".s.".dat" using 2:1 lw 2 title s." Services"
unset multiplot

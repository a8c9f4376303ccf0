# SPDX-License-Identifier: Apache-2.0
# Plots the control-plane benchmark (tools/bench/control.sh) into one PNG.
# Variables (gnuplot -e): dir = folder with the .dat tables control.sh writes,
# out = PNG path, rate = the watch rate of the CDF panel, title = figure title.
# Needs Debian's gnuplot-nox (pngcairo terminal).
set terminal pngcairo size 1500,900 font "DejaVu Sans,10"
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

set title "Durable writes (closed loop)"
set ylabel "creates/s (higher is better)"
set xlabel "concurrent clients"
plot dir."/write_rate.dat" using 2:xtic(1) title "sluice (sqlite, sync full)", \
     '' using 3 title "etcd /v3/kv/put"

set title "Write latency"
set ylabel "ms (lower is better)"
set xlabel "percentile, clients"
set logscale y
set yrange [0.1:*]
plot dir."/write_lat.dat" using 2:xtic(1) title "sluice", '' using 3 title "etcd"
unset logscale y
set yrange [0:*]

set title "List of 10,000 Services"
set ylabel "ms (lower is better)"
set xlabel ""
plot dir."/list.dat" using 2:xtic(1) title "p50", '' using 3 title "p99"

set title "Watch delivery, 1,000 watchers (from scheduled send)"
set ylabel "ms (lower is better)"
set xlabel "percentile, updates/s"
set logscale y
set yrange [1:*]
plot dir."/watch.dat" using 2:xtic(1) title "sluice", '' using 3 title "etcd"
unset logscale y
set yrange [0:*]

set title "Server RSS (10k Services + 100k endpoints)"
set ylabel "MiB (lower is better)"
set xlabel ""
plot dir."/rss.dat" using 2:xtic(1) title "sluice", '' using 3 title "etcd"

set style data linespoints
set title "Watch delivery CDF, ".rate." updates/s (median run)"
set xlabel "ms after the update's scheduled send (solid) / the writer's ack (dashed)"
set ylabel "percentile of deliveries"
set yrange [0:100]
set xrange [*:*]
set key bottom right
plot dir."/cdf-sluice.dat" using 2:1 title "sluice, from send" lw 2 lt 1, \
     dir."/cdf-etcd.dat" using 2:1 title "etcd, from send" lw 2 lt 2, \
     dir."/cdf-sluice.dat" using 3:1 title "sluice, from ack" lw 1 lt 1 dt 2, \
     dir."/cdf-etcd.dat" using 3:1 title "etcd, from ack" lw 1 lt 2 dt 2
unset multiplot

#!/bin/sh
# chart.sh -- the SVG chart of a `make bench` run: requests/s and p99 per
# scenario, nginx's two anchors and sessiond's /healthz among them, from the
# medians bench/run.sh writes (build/bench/bench.dat). Needs gnuplot
# (gnuplot-nox, scripts/deps.sh bench).
#
#   bench/chart.sh [DAT [SVG]]    defaults: build/bench/bench.dat, build/bench/bench.svg
set -eu
cd "$(dirname "$0")/.."
dat=${1:-build/bench/bench.dat}
svg=${2:-build/bench/bench.svg}
[ -r "$dat" ] || { echo "chart: no $dat (make bench writes it)" >&2; exit 1; }

# the header run.sh writes: "# <run>", "# anchor<TAB>label<TAB>rps",
# "# other<TAB>label<TAB>rps", "# healthz<TAB>rps" (quotes dropped: they
# would end gnuplot's strings)
info=$(sed -n '1s/^# //p' "$dat" | tr -d "'\"")
anchor_label=$(awk -F '\t' '$1 == "# anchor" { print $2 }' "$dat")
anchor_rps=$(awk -F '\t' '$1 == "# anchor" { print $3 }' "$dat")
other_rps=$(awk -F '\t' '$1 == "# other" { print $3 }' "$dat")
rows=$(grep -vc '^#' "$dat")
height=$((rows * 22 + 170))

gnuplot <<GP
set terminal svg size 1100,$height font "Helvetica,12" background rgb "white" noenhanced
set output "$svg"
set datafile separator "\t"
# one colour per kind of server, from the scenario's first word
col(s) = s[1:5] eq "nginx" ? 0x7f7f7f : s[1:8] eq "sessiond" ? 0x2ca02c : \
    s[1:4] eq "lmdb" ? 0x1f77b4 : s[1:5] eq "redis" ? 0xd62728 : 0xff7f0e
stats "$dat" using 3 nooutput
rps_max = STATS_max / 1000
stats "$dat" using 5 nooutput
p99_max = STATS_max
set style fill solid 0.85 noborder
set yrange [$rows - 0.5 : -0.5]
set grid xtics lc rgb "#dddddd" lt 1
set border 3
set xtics nomirror
set tmargin at screen 1 - 90.0 / $height
set bmargin at screen 60.0 / $height
set multiplot title "sessiond against nginx's static return 200 (medians; $info)" font ",13"

set lmargin at screen 0.2
set rmargin at screen 0.6
set title "requests/s, its ratio to the anchor ($anchor_label) and share of sessiond's /healthz" font ",11"
set xlabel "thousand requests/s"
set xrange [0 : rps_max * 1.58]
# tics up to the fastest bar; the column beyond it holds the ratios
e = 10 ** floor(log10(rps_max))
set xtics 0, (rps_max / e >= 4 ? e : rps_max / e >= 1.5 ? e / 2 : e / 5), rps_max
set ytics nomirror scale 0
set arrow 1 from $anchor_rps / 1000.0, graph 0 to $anchor_rps / 1000.0, graph 1 nohead dt 2 lw 1.5 lc rgb "#333333" back
set arrow 2 from $other_rps / 1000.0, graph 0 to $other_rps / 1000.0, graph 1 nohead dt 3 lw 1 lc rgb "#999999" back
set label 1 "anchor: $anchor_label" at $anchor_rps / 1000.0, graph 1 offset -0.3, 0.6 right font ",10" front
set label 2 "requests/s   ratio | /healthz" at graph 1, graph 1 offset -0.3, 0.6 right font ",10" front
plot "$dat" using (\$3 / 2000):0:(\$3 / 2000):(0.36):(col(strcol(1))):ytic(1) with boxxyerror lc rgb variable notitle, \
    "" using (rps_max * 1.58):0:(sprintf("%.1fk   %.2fx | %.2fx", \$3 / 1000, \$7, \$8)) with labels right offset -0.3, 0 font ",10" notitle

unset arrow; unset label
set lmargin at screen 0.64
set rmargin at screen 0.98
set title "p99 latency (wrk --latency)" font ",11"
set xlabel "ms"
set xtics autofreq
set xrange [0 : p99_max * 1.22]
set ytics format "" scale 0
plot "$dat" using (\$5 / 2):0:(\$5 / 2):(0.36):(col(strcol(1))) with boxxyerror lc rgb variable notitle, \
    "" using 5:0:(sprintf("%.2f", \$5)) with labels left offset 0.4, 0 font ",10" notitle
unset multiplot
GP

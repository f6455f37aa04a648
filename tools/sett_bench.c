typedef int sett_bench_placeholder;

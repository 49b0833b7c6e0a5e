-- GET with the headers given on the command line (read, validate, nginx).
dofile(os.getenv("BENCH_DIR") .. "/wrk_report.lua")

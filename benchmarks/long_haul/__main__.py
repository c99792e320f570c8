from benchmarks.long_haul.bench import main

main()

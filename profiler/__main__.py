from profiler.cli.app import main

main()

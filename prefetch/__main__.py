from prefetch.cli import main

main()

from netcheck.cli.main import main

main()

from lic.cli import main

main()

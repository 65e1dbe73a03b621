from dodo_transform.cli import main

main()

from dynsim.cli import main

raise SystemExit(main())

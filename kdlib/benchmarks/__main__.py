from kdlib.benchmarks import main

raise SystemExit(main())

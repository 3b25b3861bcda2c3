from runtime.chat import main

raise SystemExit(main())

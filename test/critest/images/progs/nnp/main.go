// Command nnp prints its effective uid. Installed set-uid root in the
// nonewprivs image, it shows whether the runtime applied no_new_privs: with
// it the exec keeps the caller's uid ("Effective uid: 1000"), without it the
// set-uid bit takes effect ("Effective uid: 0"). critest matches that output
// exactly, so keep the format.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Printf("Effective uid: %d\n", os.Geteuid())
}

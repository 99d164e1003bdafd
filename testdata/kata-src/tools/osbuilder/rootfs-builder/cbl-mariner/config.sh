# cbl-mariner config: PACKAGES="kata-packages-uvm" systemd libseccomp
OS_NAME=cbl-mariner

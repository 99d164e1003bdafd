/*
 * uvmbuild default ACPI tables for Cloud Hypervisor SEV-SNP guests: DSDT
 * (ACPI 6.3 ASL). Describes what a Kata confidential utility VM on Cloud
 * Hypervisor needs: 16 processors matching the MADT, the PCI host bridge of
 * segment 0 (ECAM in the MCFG), the 16550 serial port at 0x3F8/IRQ 4 and
 * the S5 sleep type used with the hardware-reduced sleep registers.
 */
DefinitionBlock ("", "DSDT", 6, "UVMBLD", "CLHDSDT ", 0x00000001)
{
    Name (_S5, Package (0x04) { 0x05, 0x00, 0x00, 0x00 })

    Scope (\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))  // PCI Express root bridge
            Name (_CID, EisaId ("PNP0A03"))  // PCI root bridge
            Name (_SEG, Zero)
            Name (_UID, Zero)
            Name (_BBN, Zero)
            Name (_CCA, One)
            Name (_CRS, ResourceTemplate ()
            {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                    0x0000, 0x0000, 0x0000, 0x0000, 0x0001)
                IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0000, 0x0CF7, 0x0000, 0x0CF8)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange,
                    0x0000, 0x0D00, 0xFFFF, 0x0000, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
                    0x00000000, 0xC0000000, 0xE7FFFFFF, 0x00000000, 0x28000000)
                QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,
                    0x0000000000000000, 0x0000010000000000, 0x00000FFFFFFFFFFF,
                    0x0000000000000000, 0x00000F0000000000)
            })
        }

        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))  // 16550A-compatible UART
            Name (_UID, Zero)
            Name (_DDN, "COM1")
            Method (_STA, 0, NotSerialized) { Return (0x0F) }
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, ) { 0x00000004 }
            })
        }

        Device (PWRB)
        {
            Name (_HID, EisaId ("PNP0C0C"))  // power button
            Name (_UID, Zero)
        }

        Device (CPUS)
        {
            Name (_HID, "ACPI0010")  // processor container
            Name (_CID, EisaId ("PNP0A05"))

            Device (C000)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x00)
                Method (_STA, 0, NotSerialized) { Return (0x0F) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00 })
            }

            Device (C001)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x01)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x01, 0x01, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C002)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x02)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x02, 0x02, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C003)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x03)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x03, 0x03, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C004)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x04)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x04, 0x04, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C005)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x05)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x05, 0x05, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C006)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x06)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x06, 0x06, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C007)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x07)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x07, 0x07, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C008)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x08)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C009)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x09)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x09, 0x09, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C00A)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x0A)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x0A, 0x0A, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C00B)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x0B)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x0B, 0x0B, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C00C)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x0C)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x0C, 0x0C, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C00D)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x0D)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x0D, 0x0D, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C00E)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x0E)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x0E, 0x0E, 0x02, 0x00, 0x00, 0x00 })
            }

            Device (C00F)
            {
                Name (_HID, "ACPI0007")
                Name (_UID, 0x0F)
                Method (_STA, 0, NotSerialized) { Return (0x00) }
                Name (_MAT, Buffer (0x08) { 0x00, 0x08, 0x0F, 0x0F, 0x02, 0x00, 0x00, 0x00 })
            }
        }
    }
}

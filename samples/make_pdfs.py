"""Generate the PDF documents of the sample corpus (Tidewater TW-800 docs).

Run from the repository root:

    .venv/bin/python samples/make_pdfs.py

The PDFs are written to samples/corpus/ and are deterministic: the creation
date is fixed, so re-running the script produces byte-identical files.
All text uses the built-in Helvetica font and therefore only Latin-1
characters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fpdf import FPDF

CORPUS = Path(__file__).resolve().parent / "corpus"
CREATION_DATE = datetime(2025, 3, 14, 9, 0, 0, tzinfo=UTC)

# The troubleshooting guide is the only corpus document that may contain this
# error code (tests rely on it). It is assembled here so that the plain text of
# this script does not contain the code as well.
COND_RANGE_CODE = "E-" + "4471"

# A document is a list of (heading, [block, ...]). A block is a paragraph
# string, or a list of strings rendered as bullet items.
Section = tuple[str, list["str | list[str]"]]


class DocPDF(FPDF):
    def __init__(self, doc_title: str, doc_number: str) -> None:
        super().__init__(orientation="P", unit="mm", format="A4")
        self.doc_title = doc_title
        self.doc_number = doc_number
        self.set_margins(left=20, top=20, right=20)
        self.set_auto_page_break(auto=True, margin=20)

    def header(self) -> None:
        if self.page_no() == 1:
            return
        self.set_font("Helvetica", "I", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 6, f"Tidewater Instruments - {self.doc_title}", align="L")
        self.ln(10)
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "", 8)
        self.set_text_color(90, 90, 90)
        self.cell(0, 8, f"{self.doc_number}", align="L")
        self.set_x(self.l_margin)
        self.cell(0, 8, f"Page {self.page_no()} of {{nb}}", align="R")
        self.set_text_color(0, 0, 0)


def build_pdf(
    path: str, title: str, subtitle: str, doc_number: str, sections: list[Section]
) -> None:
    pdf = DocPDF(title, doc_number)
    pdf.set_creation_date(CREATION_DATE)
    pdf.set_title(title)
    pdf.set_author("Tidewater Instruments Ltd.")
    pdf.set_subject("Tidewater TW-800 water-quality monitoring station")
    pdf.set_creator("samples/make_pdfs.py")
    pdf.add_page()

    pdf.set_font("Helvetica", "B", 18)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(70, 70, 70)
    pdf.multi_cell(0, 6, subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(6)

    for heading, blocks in sections:
        pdf.set_font("Helvetica", "B", 13)
        pdf.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1.5)
        pdf.set_font("Helvetica", "", 10.5)
        for block in blocks:
            if isinstance(block, str):
                pdf.multi_cell(0, 5.5, block, new_x="LMARGIN", new_y="NEXT")
            else:
                for item in block:
                    pdf.set_x(pdf.l_margin + 4)
                    pdf.multi_cell(0, 5.5, f"-  {item}", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(2.5)
        pdf.ln(2)

    out = CORPUS / path
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    print(f"wrote {out.relative_to(CORPUS.parent.parent)} ({pdf.pages_count} pages)")


# ---------------------------------------------------------------------------
# support/troubleshooting-guide.pdf
# ---------------------------------------------------------------------------

C = COND_RANGE_CODE

TROUBLESHOOTING: list[Section] = [
    (
        "How to use this guide",
        [
            "This guide helps you find the cause of the most common problems with the "
            "TW-800 water-quality monitoring station and tells you how to fix them. It is "
            "organised by symptom and by error code. Start with the event log: almost every "
            "fault leaves an entry there, and the code in that entry leads you straight to "
            "the right section of this guide.",
            "Many problems can be diagnosed remotely from the event log and the data, but "
            "some can only be solved on site. Before a visit, read the relevant section and "
            "pack the parts it mentions. Always download the data and put the station into "
            "maintenance mode before you change anything on the station.",
        ],
    ),
    (
        "Reading the event log and error codes",
        [
            "Every event log entry has a timestamp in UTC, a code and a short text. Codes "
            "that begin with E are errors: a function of the station is not working, and the "
            "affected data are flagged. Codes that begin with W are warnings: the station still "
            "works, but something needs attention soon. The first digit of the number shows "
            "the area: 1 for power, 2 for communication, 3 for optical sensors, 4 for the "
            "conductivity and temperature probe, 5 for data storage and 0 for mechanical parts "
            "such as the wiper.",
            "Errors clear automatically when the condition disappears, but the entry stays in "
            "the log. An error that appears and clears many times a day usually points to a "
            "loose connection or to a value that hovers around a limit.",
        ],
    ),
    (
        "Station does not power up",
        [
            "If the status display stays dark when you press the service button, first check "
            "the fuse indicator on the outside of the enclosure. If it is lit, the main fuse "
            "has blown. Disconnect the sonde cable and the solar panel, replace the fuse, and "
            "reconnect the parts one by one. If the fuse blows again when a particular part "
            "is reconnected, that part or its cable has a short circuit.",
            "If the fuse is intact, measure the battery voltage at the terminals. A battery "
            "below 10.5 V has been deeply discharged and may not recover; charge it with a "
            "workshop charger and test its capacity before putting it back into service.",
        ],
    ),
    (
        "E-1203: Battery voltage low",
        [
            "E-1203 is raised when the battery voltage falls below the configured shutdown "
            "limit. The logger stops measuring and transmitting to protect the battery and "
            "restarts automatically when the voltage has recovered for one hour. A single "
            "occurrence after a long period of dull weather is not unusual. Repeated "
            "occurrences mean that the station consumes more energy than it harvests.",
            "Check the charge history in TideLink. If the daily charge is low, clean the solar "
            "panel and look for new shading. If the charge is normal but the battery still "
            "runs down, run the battery load test; an aged battery loses capacity long before "
            "its resting voltage shows a problem.",
        ],
    ),
    (
        "E-2105: Modem registration or data session failed",
        [
            "E-2105 means the modem could not register on the cellular network, or registered "
            "but could not open a data session. If the status display shows good signal "
            "quality, the cause is almost always configuration: a wrong or missing APN, a SIM "
            "card with an active PIN, or a data plan that has expired or does not allow IoT "
            "devices. Compare the APN in TideLink with the documentation from your provider.",
            "If the signal quality is poor, check the antenna cable and connector, and check "
            "whether the radio technology setting matches what is available at the site. An "
            "external high-gain antenna solves most coverage problems at remote sites.",
        ],
    ),
    (
        "E-3310: Oxygen sensing cap expired",
        [
            "The dissolved-oxygen sensing cap contains a dye that slowly loses its "
            "luminescence. Each cap stores its installation date, and E-3310 is raised when "
            "the cap has been in use longer than its rated life. The readings remain "
            "available but are flagged as suspect. Replace the cap, enter the coefficients "
            "printed on the new cap's label, and calibrate the sensor as described in the "
            "Calibration Guide.",
        ],
    ),
    (
        f"{C}: Conductivity reading outside calibrated range",
        [
            f"{C} means the conductivity probe reported a reading outside its calibrated range. "
            "Every conductivity calibration stores the span covered by the standards that were "
            "used, extended by a tolerance margin. The logger compares each new reading with "
            f"this span, and when three consecutive readings fall outside it, it raises {C}. "
            "The readings are still stored, but they are given the quality code suspect, and a "
            "warning is sent with the next upload. The error clears automatically as soon as "
            "three consecutive readings are back inside the range.",
            "The most common causes are, roughly in order of frequency:",
            [
                "The conductivity cell is not fully immersed, for example because the water "
                "level has dropped below the sonde or the sonde has been lifted. The reading "
                "then falls to almost zero.",
                "An air bubble is trapped in the cell channel, often after maintenance or at "
                "sites with turbulent, aerated water.",
                "Heavy fouling or mineral scale in the cell channel, which changes the cell "
                "constant.",
                "Genuine conditions beyond the calibration, such as saltwater intrusion at an "
                "estuarine station during a storm surge or a drought, or road salt runoff "
                "after a winter storm.",
                "A calibration made with a wrong standard value entered in TideLink, or with a "
                "contaminated or diluted standard.",
                "Water in the probe connector or a damaged sonde cable, which usually produces "
                "erratic values rather than a steady offset.",
            ],
            "To fix the problem, work through the following steps:",
            [
                "Check the water level and the temperature reading. A temperature that follows "
                "the air temperature shows that the sonde is out of the water; lower it or "
                "adjust the depth stop.",
                "Lift the sonde a few centimetres and lower it again, or tap the deployment "
                "pipe, to release trapped air, then trigger a measurement in TideLink.",
                "Clean the conductivity cell as described in the Field Maintenance Handbook.",
                "Compare the reading with a calibrated reference meter. If the reference agrees "
                "with the station, the water really is outside the calibrated range: "
                "recalibrate with standards that bracket the expected values, for example a "
                "two-point calibration with 12 880 \u00b5S/cm and 50 mS/cm at estuarine sites.",
                "Review the calibration history for an obviously wrong standard value and "
                "repeat the calibration if necessary.",
                "If the error persists and the reading still disagrees with the reference after "
                "cleaning and recalibration, inspect the connector for water, swap in a spare "
                "probe and contact Tidewater support with an event log export.",
            ],
        ],
    ),
    (
        "W-0610: Wiper stall",
        [
            "W-0610 is raised when the turbidity wiper does not reach its park position within "
            "the expected time. The most common causes are a new blade pressing too hard "
            "against the window, sand or a small shell caught under the blade, and a worn hub. "
            "Loosen the set screw, realign the blade and run a few test wipes. A wiper that "
            "stalls repeatedly increases energy consumption noticeably and can leave the blade "
            "parked over the optical window, producing very high turbidity readings.",
        ],
    ),
    (
        "E-5102: Storage write failure",
        [
            "E-5102 means the logger could not write a record to the microSD card. Records are "
            "still stored in internal memory, so no data are lost immediately. Remove the card, "
            "check it on a computer and replace it with an industrial-grade card of 32 GB or "
            "less, formatted as FAT32. Consumer cards often fail after a few months in the wide "
            "temperature range of an outdoor enclosure.",
        ],
    ),
    (
        "Erratic or noisy readings",
        [
            "Noisy readings on several sensors at the same time usually have an electrical "
            "cause: a poor ground connection, a damaged cable shield, or interference from a "
            "nearby pump or variable-speed drive. Check that the sonde cable shield is "
            "connected to the SHIELD terminal only at the logger end, and route the cable away "
            "from power cables. Noise on a single sensor points to that sensor or its "
            "connector.",
            "Sudden steps in the data that coincide with maintenance visits are normal if the "
            "sensors were fouled. They should be explained in the visit log, and the data "
            "before the visit may need a drift correction during data review.",
        ],
    ),
    (
        "When to contact support",
        [
            "Contact Tidewater support if a problem is not covered by this guide, if the "
            "suggested steps do not solve it, or if a sensor or the logger appears to be "
            "physically damaged. Include the station ID, the firmware version, an event log "
            "export and a description of what you have already tried. This information lets "
            "our engineers start working on the problem immediately.",
        ],
    ),
]


# ---------------------------------------------------------------------------
# guides/winterization-and-storage.pdf
# ---------------------------------------------------------------------------

WINTERIZATION: list[Section] = [
    (
        "Introduction",
        [
            "Ice and freezing temperatures are the greatest seasonal risk for a water-quality "
            "monitoring station. Moving ice can crush deployment pipes and tear cables, and "
            "water that freezes inside a sensor can crack its housing. This document helps you "
            "decide how to prepare each TW-800 station for the winter and describes how to "
            "store sensors and equipment that are taken out of service until spring.",
            "The right approach depends on the site. Many stations in flowing rivers can "
            "measure right through the winter, while stations in shallow lakes or at sites "
            "with heavy ice drift are better taken out of the water. Whatever you decide, plan "
            "the work for a dry day before the first hard frost.",
        ],
    ),
    (
        "Assessing the ice risk at your site",
        [
            "Look at the records of previous winters: the typical ice thickness, whether the "
            "water body freezes over completely, and whether ice breaks up in large floes "
            "during thaw. Local operators, fishermen and the owners of the structure are often "
            "the best source of this information. Also consider how the water level changes "
            "in winter, because a sonde that is deep enough in autumn may be frozen in at low "
            "winter flow.",
            "As a rule of thumb, a sonde can remain deployed if it hangs at least 50 cm below "
            "the deepest expected ice, in a deployment pipe that is protected from drifting "
            "ice by the structure it is mounted on. In all other cases, remove the sonde.",
        ],
    ),
    (
        "Option 1: Leaving the sonde deployed",
        [
            "If the sonde stays in the water, lower it below the expected ice depth and record "
            "the new depth in the visit log. Fit the ice guard over the top of the deployment "
            "pipe and make sure the cable runs inside the pipe, not along the outside where "
            "ice can grip it. Where ice can push against the pipe, add a steel deflector on "
            "the upstream side.",
            "The pH electrode is safe as long as it stays in liquid water, but it is destroyed "
            "if the water around it freezes. The conductivity, oxygen and turbidity sensors "
            "tolerate occasional freezing much better, but their readings are meaningless in "
            "ice. Set an alarm on the water temperature at 0.5 \u00b0C so that you are warned "
            "if the sonde is at risk of freezing in.",
        ],
    ),
    (
        "Option 2: Removing the sonde for the winter",
        [
            "Download the data, put the station into maintenance mode and lift the sonde. "
            "Clean it thoroughly, as you would during a routine visit, and let it drain. Do "
            "not leave the sonde cable hanging in the pipe, where it can be frozen in and "
            "damaged; coil it loosely inside the enclosure or take it with you.",
            "While the sonde is out of the water, set the logger to seasonal hibernation in "
            "TideLink. In hibernation the logger stops measuring, keeps its clock and "
            "configuration, and sends a short daily status message with the battery voltage, "
            "so that you know the station is still alive. This reduces energy consumption to "
            "a small fraction of normal operation, which matters in the darkest months.",
        ],
    ),
    (
        "Storing sensors",
        [
            "Each type of sensor needs different storage conditions. Store all sensors indoors, "
            "above freezing and away from direct sunlight:",
            [
                "pH and ORP electrodes: fit the storage cap filled with storage solution. Never "
                "store the electrode in deionized water, which leaches the reference "
                "electrolyte. Check the cap every two months and top it up if necessary.",
                "Dissolved-oxygen sensor: keep the sensing cap in its moist storage cup, with a "
                "damp sponge inside, so that the dye layer stays hydrated.",
                "Conductivity and temperature probe: rinse with deionized water and store dry.",
                "Turbidity sensor: clean the window, remove the wiper blade so that it does not "
                "take a permanent set, and store the sensor dry with the blade in a bag.",
            ],
            "Label every sensor with the station ID and the date of removal. When sensors are "
            "stored for more than six months, schedule a calibration before they are deployed "
            "again.",
        ],
    ),
    (
        "The logger and battery in winter",
        [
            "A fully charged lead-acid battery does not freeze until about -50 \u00b0C, but a "
            "discharged battery can freeze at -10 \u00b0C and will then be ruined. Make sure "
            "the battery is fully charged when you leave the station for the winter, and check "
            "the daily status messages for falling voltage. If the solar panel is likely to be "
            "covered by snow for long periods, consider removing the battery and storing it "
            "indoors on a maintenance charger.",
            "Lithium iron phosphate batteries must not be charged below 0 \u00b0C. The charge "
            "controller suspends charging automatically at low temperatures, so a lithium "
            "battery in a cold enclosure may not recharge for weeks. At very cold sites, a "
            "lead-acid battery is usually the better choice.",
        ],
    ),
    (
        "Recommissioning in spring",
        [
            "Wait until the ice has broken up and the spring flood has passed before you "
            "redeploy the sonde. Inspect the deployment pipe and its fixings for ice damage "
            "first. Calibrate the sensors, or fit freshly calibrated spares, and refit the "
            "wiper blade. Return the sonde to its normal depth, take the logger out of "
            "hibernation, and compare the first readings with a reference meter, as you would "
            "after commissioning a new station.",
            "Record the recommissioning as a maintenance visit in TideLink, so that the gap in "
            "the data is clearly documented and is not mistaken for a station failure.",
        ],
    ),
]


# ---------------------------------------------------------------------------
# reference/power-and-solar-sizing.pdf
# ---------------------------------------------------------------------------

POWER: list[Section] = [
    (
        "Why a power budget matters",
        [
            "Most TW-800 stations run on a battery that is recharged by a solar panel. The "
            "standard configuration, a 40 W panel and a 38 Ah battery, is sufficient for most "
            "sites between about 45 degrees south and 50 degrees north. Stations further from "
            "the equator, stations in deep valleys or under trees, and stations with extra "
            "sensors or frequent measurements may need a larger panel, a larger battery or "
            "both. This note explains how to estimate the energy budget for a site and how to "
            "size the solar panel and the battery.",
            "The principle is simple: over any period, the energy harvested by the panel must "
            "be greater than the energy the station consumes, and the battery must be large "
            "enough to bridge the longest expected period of poor weather. The critical period "
            "is always midwinter, when the days are shortest and the sun is lowest.",
        ],
    ),
    (
        "Energy consumption of the station",
        [
            "The energy consumption of a TW-800 is the sum of four contributions. The figures "
            "below are typical values at 20 \u00b0C and 12.8 V battery voltage.",
            [
                "Logger standby: the logger draws about 1.5 mA between activities, which "
                "amounts to roughly 0.45 Wh per day.",
                "Measurement cycles: a cycle with four sensors and one wipe takes about 45 "
                "seconds at an average of 180 mA, or about 0.027 Wh. At a 15-minute logging "
                "interval, that is 96 cycles and about 2.6 Wh per day.",
                "Telemetry: with the default telemetry settings and good LTE-M coverage, the "
                "modem uses about 3 Wh per day. Poor signal quality can double this figure.",
                "Other loads: the status display, the charge controller and the heater of the "
                "optional external antenna together add about 0.3 Wh per day.",
            ],
            "A standard station therefore needs about 6.4 Wh per day, or roughly 0.5 Ah per "
            "day at 12.8 V. TideLink shows the measured consumption of each station on the "
            "Power page, and for existing stations this measured figure is always preferable "
            "to an estimate.",
        ],
    ),
    (
        "Sizing the battery",
        [
            "Lead-acid batteries last much longer if they are not discharged below 50 percent "
            "of their capacity. The usable capacity of the standard 38 Ah battery is therefore "
            "about 19 Ah. At 0.5 Ah per day, this gives an autonomy of more than five weeks "
            "without any sun at all, which is ample for most sites. Cold reduces the available "
            "capacity, so at sites with winter temperatures below -10 \u00b0C, assume only 70 "
            "percent of the nominal capacity.",
            "Lithium iron phosphate batteries can be discharged more deeply, typically to 20 "
            "percent, and are lighter, but they cannot be charged below freezing. They are "
            "a good choice for warm sites and for stations that must be carried some distance "
            "from the road.",
        ],
    ),
    (
        "Sizing the solar panel",
        [
            "The energy a panel delivers per day can be estimated as its rated power "
            "multiplied by the number of peak sun hours at the site and by a system "
            "efficiency factor. Peak sun hours are the equivalent number of hours of full "
            "sunshine per day and are available from solar radiation maps for every month. "
            "For a small system with a charge controller, cable losses and some dirt on the "
            "panel, use an efficiency factor of 0.6.",
            "Divide the daily energy requirement by the peak sun hours of the worst month and "
            "by the efficiency factor to obtain the minimum panel rating, then multiply by two "
            "to allow for runs of cloudy days and ageing of the panel. Round up to the next "
            "available panel size: Tidewater supplies 40 W, 80 W and 120 W panels.",
        ],
    ),
    (
        "Worked example",
        [
            "A station at 52 degrees north with the standard sensor set needs 6.4 Wh per day. "
            "In December, the site receives about 0.7 peak sun hours per day. The minimum panel "
            "rating is 6.4 / (0.7 x 0.6) = 15 W, and with a safety factor of two, 30 W. The "
            "standard 40 W panel is sufficient. If the same station also carried a nitrate "
            "sensor that adds 4 Wh per day, the requirement would rise to 10.4 Wh per day and "
            "the panel rating to about 50 W, so the 80 W panel should be used.",
            "At 60 degrees north, December brings only about 0.2 peak sun hours per day, and no "
            "practical panel can supply a standard station through midwinter. In such cases, "
            "reduce consumption, use a larger battery that is fully charged in autumn, or use "
            "mains power.",
        ],
    ),
    (
        "Reducing consumption",
        [
            "Where the energy budget is tight, the most effective measures are a longer "
            "logging interval, enabling the adaptive wiper schedule, a less frequent telemetry "
            "schedule, and an external antenna to improve signal quality, which shortens the "
            "time the modem needs for each connection. Turning off the status display "
            "backlight saves a little energy at busy sites where the service button is often "
            "pressed.",
        ],
    ),
    (
        "Mains power",
        [
            "Where mains power is available, for example at treatment plants, the TW-800 can be "
            "powered from the optional 100-240 V AC power supply. The battery remains in place "
            "as a buffer and bridges power cuts. Ethernet installations can also use Power "
            "over Ethernet, which supplies both data and power through a single cable. Work "
            "on mains installations must be carried out by a qualified electrician.",
        ],
    ),
]


# ---------------------------------------------------------------------------
# support/return-and-repair-procedure.pdf
# ---------------------------------------------------------------------------

RETURNS: list[Section] = [
    (
        "Overview",
        [
            "This document describes how to return a TW-800 logger, sonde, sensor or accessory "
            "to Tidewater Instruments for repair, factory calibration or evaluation. Following "
            "the procedure avoids delays, protects our staff from contaminated equipment, and "
            "makes sure the returned item can be matched to your request as soon as it arrives "
            "at the service centre.",
            "The procedure applies to repairs within the warranty period as well as to paid "
            "repairs and calibrations. The terms of the warranty itself are set out in the "
            "separate warranty statement.",
        ],
    ),
    (
        "Step 1: Contact support",
        [
            "Open a ticket in the support portal before you ship anything. Describe the fault, "
            "attach an event log export from TideLink, and state the serial numbers of the "
            "items you want to return. Many problems that look like hardware faults turn out "
            "to be configuration issues, and our engineers will first try to solve the problem "
            "remotely. This saves you the shipping costs and the downtime of the station.",
        ],
    ),
    (
        "Step 2: Obtain a return authorisation number",
        [
            "If the item needs to come back to us, support issues a return authorisation "
            "number, known as an RMA number, together with the address of the service centre "
            "that will handle the repair. The RMA number is valid for 30 days. Write it clearly "
            "on the outside of the box and on the decontamination declaration. Parcels without "
            "an RMA number cannot be matched to a request and may be returned unopened.",
        ],
    ),
    (
        "Step 3: Clean and decontaminate",
        [
            "Every returned item must be clean. Remove fouling, sediment and mineral deposits "
            "as you would during a maintenance visit, and let the item dry. Equipment that has "
            "been used in wastewater, in sewage-affected rivers or in water with hazardous "
            "substances must also be disinfected, for example by wiping all wetted surfaces "
            "with a 70 percent ethanol solution or a suitable disinfectant.",
            "Complete and sign the decontamination declaration that is attached to the RMA "
            "confirmation, stating the type of water the equipment was used in and how it was "
            "cleaned. Place one copy inside the box and attach a second copy to the outside. "
            "Our service staff will not open a box without a signed declaration, and equipment "
            "that arrives dirty is returned for cleaning at your expense.",
        ],
    ),
    (
        "Step 4: Pack the equipment",
        [
            "Use the original packaging if you still have it, or a sturdy box with at least 5 "
            "cm of padding on all sides. Fit the storage cap with storage solution to pH "
            "electrodes, and protect optical windows with their caps. Coil sonde cables "
            "loosely with a minimum bend diameter of 30 cm and secure them with soft ties, not "
            "with tape directly on the cable jacket.",
            "Do not send batteries unless support specifically asks for them. Lead-acid and "
            "lithium batteries are dangerous goods in transport and require special packaging "
            "and labelling. Also remove the SIM card from the logger and keep it, because "
            "returned SIM cards cannot be forwarded.",
        ],
    ),
    (
        "Step 5: Ship the parcel",
        [
            "Send the parcel with a tracked shipping service and insure it for the replacement "
            "value of its contents. For shipments across borders, mark the commercial invoice "
            "as a return for repair, with the RMA number, so that no import duties are charged. "
            "Send the tracking number to support by adding it to your ticket.",
        ],
    ),
    (
        "What happens at the service centre",
        [
            "When the parcel arrives, we check the decontamination declaration, register the "
            "items against the RMA number and confirm receipt in your ticket. A technician then "
            "inspects and tests the equipment. If the fault is covered by the warranty, the "
            "repair is carried out without further questions. For other repairs, you receive a "
            "quotation, and the work starts once you have accepted it. Quotations that are not "
            "accepted within 60 days are closed, and the equipment is returned unrepaired.",
            "The standard turnaround time is ten business days from receipt to shipment. "
            "Factory calibrations take five business days. Every repaired or calibrated item "
            "is returned with a service report and, for sensors, a calibration certificate.",
        ],
    ),
    (
        "Loan equipment",
        [
            "To keep stations running during a repair, Tidewater can provide loan loggers and "
            "sensors, subject to availability. Customers with a Priority Service Agreement "
            "receive loan equipment free of charge and shipped before the faulty item is "
            "returned. Other customers can rent loan equipment for a weekly fee. Please return "
            "loan equipment within two weeks of receiving your repaired item.",
        ],
    ),
]


def main() -> None:
    build_pdf(
        "support/troubleshooting-guide.pdf",
        "TW-800 Troubleshooting Guide",
        "Tidewater TW-800 water-quality monitoring station - Document TG-800, revision 7, "
        "March 2025",
        "TG-800 rev. 7",
        TROUBLESHOOTING,
    )
    build_pdf(
        "guides/winterization-and-storage.pdf",
        "Winterization and Seasonal Storage",
        "Tidewater TW-800 water-quality monitoring station - Application note AN-812, October 2024",
        "AN-812",
        WINTERIZATION,
    )
    build_pdf(
        "reference/power-and-solar-sizing.pdf",
        "Power Budget and Solar Panel Sizing",
        "Tidewater TW-800 water-quality monitoring station - Application note AN-805, "
        "revision 2, June 2024",
        "AN-805 rev. 2",
        POWER,
    )
    build_pdf(
        "support/return-and-repair-procedure.pdf",
        "Return and Repair Procedure (RMA)",
        "Tidewater Instruments service documentation - Document SV-101, January 2025",
        "SV-101",
        RETURNS,
    )


if __name__ == "__main__":
    main()

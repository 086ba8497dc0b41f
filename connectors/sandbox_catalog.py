"""The sample company the sandbox CRM is seeded with: products, industries, teams, names.

Plain data, kept apart from the seeding logic in :mod:`connectors.sandbox_seed`
so a reader can see the whole cast of the demo at a glance.
"""

from __future__ import annotations

STRATEGIC_PRODUCTS = ("Data Platform", "Analytics Cloud")
TRADITIONAL_PRODUCTS = (
    "Legacy Reporting Suite",
    "Support Renewal",
    "Professional Services",
    "On-Prem License",
)
TARGET_INDUSTRIES = ("Manufacturing", "Healthcare")
TARGET_MIN_EMPLOYEES = 1000
STAGES = {  # stage -> probability (%), as in a default Salesforce sales process
    "Prospecting": 10,
    "Qualification": 20,
    "Needs Analysis": 40,
    "Proposal": 60,
    "Negotiation": 80,
    "Closed Won": 100,
    "Closed Lost": 0,
}
INDUSTRIES = {  # industry -> (weight, revenue per employee in USD)
    "Manufacturing": (22, 320_000),
    "Healthcare": (18, 180_000),
    "Financial Services": (13, 450_000),
    "Retail": (11, 210_000),
    "Technology": (15, 380_000),
    "Education": (7, 90_000),
    "Government": (6, 120_000),
    "Energy": (5, 600_000),
    "Logistics": (3, 250_000),
}
COUNTRIES = {  # country -> (weight, currency)
    "United States": (60, "USD"),
    "Canada": (8, "CAD"),
    "United Kingdom": (10, "GBP"),
    "Germany": (9, "EUR"),
    "France": (5, "EUR"),
    "Netherlands": (4, "EUR"),
    "Australia": (4, "AUD"),
}
TEAMS = (  # team, manager (id, name), reps' names
    (
        "Enterprise East",
        ("U-001", "Margaret Chen"),
        ("Sean O'Brien", "Priya Raman", "Marcus Webb", "Elena Petrova"),
    ),
    (
        "Enterprise West",
        ("U-002", "David Okafor"),
        ("Hannah Lindqvist", "Carlos Mendoza", "Aisha Bello", "Tom Gallagher"),
    ),
    (
        "Mid-Market",
        ("U-003", "Rachel Stein"),
        ("Kevin Park", "Sofia Rossi", "Jamal Wright", "Lena Fischer"),
    ),
)
EXCEPTION_REASONS = (
    "Longer-term opportunity: pilot for a Fortune 500 division",
    "Champion is moving to a target account",
    "Executive sponsor sits on the board of two target accounts",
    "Reference customer for the Data Platform launch in this region",
    "Land now, expand into the parent company's manufacturing plants",
    "Easy renewal, no sales or implementation effort",
)
NAME_WORDS = (
    "Apex",
    "Summit",
    "Northwind",
    "Bluewater",
    "Ironbridge",
    "Cedar",
    "Harbor",
    "Keystone",
    "Granite",
    "Pioneer",
    "Silverline",
    "Redwood",
    "Meridian",
    "Crescent",
    "Evergreen",
    "Lakeshore",
    "Highland",
    "Atlas",
    "Beacon",
    "Frontier",
    "Sterling",
    "Riverbend",
    "Oakmont",
    "Vanguard",
    "Brightwater",
    "Stonegate",
    "Westfield",
    "Clearview",
    "Falcon",
    "Horizon",
    "Mapleton",
    "Trident",
    "Copperfield",
    "Bayside",
    "Lighthouse",
    "Sequoia",
    "Orion",
    "Blackrock",
    "Fairview",
    "Kingsley",
    "Hawthorne",
    "Ashford",
    "Prairie",
    "Canyon",
    "Delta",
)
INDUSTRY_WORDS = {
    "Manufacturing": (
        "Precision",
        "Industrial",
        "Fabrication",
        "Components",
        "Machining",
        "Plastics",
        "Automotive Parts",
        "Steelworks",
        "Packaging",
    ),
    "Healthcare": (
        "Health",
        "Medical Center",
        "Clinics",
        "Health System",
        "Biosciences",
        "Diagnostics",
        "Care Partners",
        "Pharma",
    ),
    "Financial Services": (
        "Capital",
        "Bancorp",
        "Insurance",
        "Financial",
        "Credit Union",
        "Asset Management",
    ),
    "Retail": ("Outfitters", "Markets", "Home Goods", "Grocers", "Apparel", "Stores"),
    "Technology": ("Software", "Systems", "Networks", "Labs", "Data", "Cloud"),
    "Education": ("University", "College", "School District", "Learning"),
    "Government": ("County", "City Services", "Transit Authority", "Water District"),
    "Energy": ("Energy", "Power", "Renewables", "Utilities"),
    "Logistics": ("Logistics", "Freight", "Shipping", "Distribution"),
}
COMPANY_SUFFIXES = ("Inc.", "Corp.", "Group", "LLC", "Co.", "")

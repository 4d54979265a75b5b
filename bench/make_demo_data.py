"""Write the small demo datasets that ship in ``data/`` and check them.

Everything here is written for this project: the encyclopedic paragraphs, the task records and the
conversations. The output is deterministic (fixed seed, sorted keys where it matters), so running the
script twice gives byte-identical files and the same ``file_sha1`` values in ``dataset_info.json``.

Usage::

    python bench/make_demo_data.py            # write data/ and validate it
    python bench/make_demo_data.py --check    # only validate what is already there
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = 20240611

QA = tuple[str, str, str]  # instruction, input, output


# --------------------------------------------------------------------------------------------------------------------
# text helpers
# --------------------------------------------------------------------------------------------------------------------


def _blocks(text: str, joiner: str = " ") -> list[str]:
    """Blank-line separated blocks of ``text``; wrapped lines inside a block are joined with ``joiner``."""
    out = []
    for block in text.strip().split("\n\n"):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines:
            out.append(joiner.join(lines))
    return out


def _records(text: str, n_fields: int, joiner: str = " ") -> list[list[str]]:
    """Records split on ``|`` into exactly ``n_fields`` stripped fields.

    A record is a blank-line separated block when the text has blank lines, otherwise a single line.
    """
    items = _blocks(text, joiner) if "\n\n" in text.strip() else _lines(text)
    rows = []
    for block in items:
        fields = [field.strip() for field in block.split("|")]
        if len(fields) != n_fields:
            raise ValueError(f"expected {n_fields} fields, got {len(fields)}: {block[:80]}")
        rows.append(fields)
    return rows


def _lines(text: str) -> list[str]:
    """Non-empty stripped lines."""
    return [line.strip() for line in text.strip().splitlines() if line.strip()]


def _cap(text: str) -> str:
    """Upper-case the first character only."""
    return text[:1].upper() + text[1:]


def _num(value: float) -> str:
    """Integers without a decimal point and with thousands separators; other values trimmed."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


# --------------------------------------------------------------------------------------------------------------------
# wiki_demo.txt: encyclopedic paragraphs, one per line
# --------------------------------------------------------------------------------------------------------------------

# name | symbol | atomic number | class | state at room temperature | facts
ELEMENTS = """
Hydrogen | H | 1 | a nonmetal | a colourless, odourless gas | It is the lightest and the most abundant element in
the universe, and ordinary stars shine by fusing it into helium in their cores. On Earth most hydrogen is bound up
in water, and industry produces large amounts of the free gas for making ammonia and refining petroleum.

Helium | He | 2 | a noble gas | a colourless gas | Helium was first detected in 1868 as an unexplained yellow line
in the spectrum of the Sun, decades before it was isolated on Earth. It has the lowest boiling point of any element,
which makes liquid helium the standard coolant for the superconducting magnets in hospital MRI scanners.

Lithium | Li | 3 | an alkali metal | a soft, silvery metal | It is the lightest of all metals and is soft enough to
cut with a knife. Lithium compounds are the working ingredient of rechargeable lithium-ion batteries, which power
most phones, laptops and electric cars.

Beryllium | Be | 4 | an alkaline earth metal | a hard, grey metal | Beryllium is unusually light and stiff, and thin
sheets of it let X-rays pass almost unhindered, so it is used for the windows of X-ray tubes. The primary mirror
segments of the James Webb Space Telescope are made of gold-coated beryllium.

Boron | B | 5 | a metalloid | a hard, dark solid | Boron oxide is a key ingredient of borosilicate glass, which
resists cracking when it is heated or cooled quickly. Small amounts of boron are also added to silicon to change how
it conducts electricity in semiconductor devices.

Carbon | C | 6 | a nonmetal | a solid | Carbon atoms can bond to one another in chains and rings, and this
versatility is the basis of organic chemistry and of all known life. Pure carbon occurs as soft graphite and as
extremely hard diamond, and the slow decay of the isotope carbon-14 is used to date ancient organic remains.

Nitrogen | N | 7 | a nonmetal | a colourless gas | Nitrogen makes up about 78 per cent of the Earth's atmosphere by
volume. It is an essential part of proteins and nucleic acids, and liquid nitrogen, which boils at about minus 196
degrees Celsius, is widely used to freeze biological samples.

Oxygen | O | 8 | a nonmetal | a colourless gas | Oxygen forms about 21 per cent of the air and is, by mass, the most
abundant element in the Earth's crust, where it is locked into silicate minerals. Animals need it for respiration,
and a three-atom form of the element, ozone, absorbs much of the Sun's ultraviolet light high in the atmosphere.

Fluorine | F | 9 | a halogen | a pale yellow gas | Fluorine is the most electronegative and one of the most reactive
of all elements, combining with almost everything it touches. Its compounds are far tamer: fluoride is added to
toothpaste to protect teeth, and fluorinated polymers give frying pans their non-stick coating.

Neon | Ne | 10 | a noble gas | a colourless gas | Neon was discovered in 1898 by William Ramsay and Morris Travers
while they studied liquefied air. When an electric current passes through it at low pressure it glows a vivid
orange-red, the colour of classic neon signs.

Sodium | Na | 11 | an alkali metal | a soft, silvery metal | Sodium reacts vigorously with water and is therefore
stored under oil in the laboratory. In nature it is found mainly in compounds, above all in sodium chloride, the
common table salt dissolved in seawater.

Magnesium | Mg | 12 | an alkaline earth metal | a light, silvery metal | Magnesium burns with a brilliant white
flame and was once used in photographic flash powder. A magnesium atom sits at the centre of every chlorophyll
molecule, and alloys of the metal are valued where low weight matters.

Aluminium | Al | 13 | a post-transition metal | a light, silvery metal | It is the most abundant metal in the
Earth's crust, yet it was once more precious than gold because it was so hard to extract. The electrolytic process
developed independently by Charles Martin Hall and Paul Héroult in 1886 made aluminium cheap enough for cans, foil
and aircraft.

Silicon | Si | 14 | a metalloid | a hard, grey crystalline solid | Silicon is the second most abundant element in
the Earth's crust, mostly in the form of silica and silicate rocks such as quartz sand. Very pure crystals of
silicon are the raw material of nearly all computer chips and solar cells.

Phosphorus | P | 15 | a nonmetal | a solid | The alchemist Hennig Brand isolated phosphorus in 1669 by boiling down
large quantities of urine. Phosphate groups form the backbone of DNA and carry energy in the molecule ATP, and
phosphate fertilisers are essential to modern farming.

Sulfur | S | 16 | a nonmetal | a bright yellow solid | Sulfur is often found near volcanoes and hot springs, and it
has been known since ancient times. Sulfuric acid, made from it, is produced in greater quantity than almost any
other industrial chemical.

Chlorine | Cl | 17 | a halogen | a yellow-green gas | Chlorine is a toxic and strongly oxidising gas, but small
doses of it are used to disinfect drinking water and swimming pools. It is also a building block of the plastic PVC
and of many other industrial products.

Argon | Ar | 18 | a noble gas | a colourless gas | Argon makes up a little less than one per cent of the atmosphere,
which makes it the most common noble gas on Earth. Because it reacts with almost nothing, it is used as a protective
atmosphere in welding and inside some light bulbs.

Potassium | K | 19 | an alkali metal | a soft, silvery metal | Potassium reacts with water so violently that the
hydrogen released catches fire with a lilac flame. In living things potassium ions help carry nerve signals and keep
the heart beating regularly.

Calcium | Ca | 20 | an alkaline earth metal | a silvery metal | Calcium is the most abundant metal in the human
body, where it strengthens bones and teeth. Limestone, chalk and marble are all forms of calcium carbonate, formed
largely from the shells of ancient marine organisms.

Titanium | Ti | 22 | a transition metal | a strong, silvery metal | Titanium combines high strength with low density
and resists corrosion even in seawater, so it is used in aircraft, ships and medical implants. Its oxide is a
brilliant white pigment found in paints, paper and sunscreen.

Chromium | Cr | 24 | a transition metal | a hard, lustrous metal | Its name comes from the Greek word for colour,
because many chromium compounds are vividly coloured. Chromium is the ingredient that makes stainless steel
stainless, and thin chromium plating gives metal parts a mirror-like finish.

Iron | Fe | 26 | a transition metal | a grey metal | Measured by mass, iron is the most common element in the Earth
as a whole, because the planet's core is made mostly of it. Alloyed with a little carbon it becomes steel, and in
the body it sits at the heart of haemoglobin, which carries oxygen in the blood.

Cobalt | Co | 27 | a transition metal | a hard, bluish-grey metal | Cobalt compounds have coloured glass and
ceramics a deep blue for centuries. The element is also found in vitamin B12 and is an important ingredient of many
rechargeable battery electrodes.

Nickel | Ni | 28 | a transition metal | a silvery metal | Nickel is one of only a few elements that are magnetic at
room temperature. It is mostly used in stainless steel and other alloys, and it has long been a common metal in
coins.

Copper | Cu | 29 | a transition metal | a reddish-orange metal | Copper conducts electricity extremely well, so most
electrical wiring is made of it. Mixed with tin it forms bronze and mixed with zinc it forms brass, and copper roofs
slowly weather to a green patina.

Zinc | Zn | 30 | a transition metal | a bluish-white metal | Most zinc is used to galvanise steel, coating it with a
thin layer that corrodes first and protects the iron beneath. Zinc is also a trace nutrient needed by hundreds of
enzymes in the human body.

Silver | Ag | 47 | a transition metal | a shiny white metal | Silver conducts heat and electricity better than any
other element. For more than a century light-sensitive silver compounds were the basis of photographic film.

Tin | Sn | 50 | a post-transition metal | a soft, silvery metal | Adding tin to copper produced bronze, the first
widely used alloy, and gave its name to the Bronze Age. Today tin is used mainly in solder for joining electronic
components and as a thin coating on steel food cans.

Iodine | I | 53 | a halogen | a shiny, dark grey solid | When warmed, solid iodine turns directly into a violet
vapour without melting first. The thyroid gland needs iodine to make its hormones, which is why many countries add
it to table salt.

Tungsten | W | 74 | a transition metal | a hard, grey metal | Tungsten has the highest melting point of all metals,
about 3,422 degrees Celsius, which made it the material of choice for incandescent lamp filaments. Its symbol W
comes from wolfram, the older name of the element.

Platinum | Pt | 78 | a transition metal | a dense, silvery-white metal | Platinum is very unreactive and does not
tarnish in air. Its most important use is as a catalyst, for example in the catalytic converters that clean up car
exhaust gases.

Gold | Au | 79 | a transition metal | a soft, yellow metal | Gold is so malleable that a single gram can be hammered
into a sheet about a square metre in area. It does not tarnish, which is why it has been prized for jewellery and
coinage for thousands of years and is used for reliable electrical contacts.

Mercury | Hg | 80 | a transition metal | a silvery liquid | Mercury is the only metal that is liquid under standard
conditions. It was long used in thermometers and barometers, but because its vapour and compounds are toxic it has
been phased out of many everyday products.

Lead | Pb | 82 | a post-transition metal | a soft, dense, grey metal | Lead has been mined since antiquity, and the
Romans used it for water pipes. Its density makes it a good shield against X-rays, but because it is poisonous it
has been removed from petrol and household paint in most countries.

Radium | Ra | 88 | an alkaline earth metal | a silvery-white metal | Marie and Pierre Curie discovered radium in
1898 while studying the radioactivity of uranium ore. It was later used in luminous paint for watch dials until the
dangers of its radiation became clear.

Uranium | U | 92 | an actinide | a dense, silvery-grey metal | Uranium was identified in 1789 by Martin Heinrich
Klaproth, who named it after the recently discovered planet Uranus. Its isotope uranium-235 can sustain a nuclear
chain reaction and is the fuel of most nuclear power stations.

Plutonium | Pu | 94 | an actinide | a silvery metal | Plutonium was first produced in 1940 by a team led by Glenn
Seaborg, and it was named after the dwarf planet Pluto. It is made in nuclear reactors, and one isotope powers the
radioisotope generators of deep-space probes.
"""

# name | capital | region | language clause | currency | facts
COUNTRIES = """
France | Paris | Western Europe | French is the official language | the euro | The country is one of the most
visited in the world, and its capital is famous for the Eiffel Tower, completed in 1889. France has coastlines on
the English Channel, the Atlantic Ocean and the Mediterranean Sea.

Germany | Berlin | Central Europe | German is the official language | the euro | It is the most populous member
state of the European Union and has one of the largest economies in the world. The country was reunified in 1990
after four decades of division into East and West.

Italy | Rome | Southern Europe | Italian is the official language | the euro | The Italian mainland forms a long,
boot-shaped peninsula reaching into the Mediterranean Sea. Two independent states, San Marino and Vatican City, lie
entirely within its territory.

Spain | Madrid | south-western Europe, on the Iberian Peninsula | Spanish is the official language | the euro |
Besides its mainland territory, Spain includes the Balearic Islands in the Mediterranean and the Canary Islands off
the coast of Africa. Madrid sits near the geographic centre of the peninsula on a high plateau.

Portugal | Lisbon | south-western Europe, on the Iberian Peninsula | Portuguese is the official language | the euro |
Portuguese navigators led the early European voyages of exploration, and Vasco da Gama reached India by sea in 1498.
The country also includes the Atlantic archipelagos of the Azores and Madeira.

Japan | Tokyo | East Asia | Japanese is the national language | the yen | Japan is an island country whose four main
islands are Honshu, Hokkaido, Kyushu and Shikoku. Its highest peak, Mount Fuji, is an active volcano that last
erupted in 1707.

China | Beijing | East Asia | Standard Chinese, based on Mandarin, is the official language | the renminbi, whose
unit is the yuan | China is one of the world's largest countries by area and has one of its oldest continuous
civilisations. The Yangtze, its longest river, is also the longest river in Asia.

India | New Delhi | South Asia | Hindi and English are the languages of the central government | the Indian rupee |
India became the world's most populous country around 2023. The Himalayas form much of its northern border, and the
Ganges is its most sacred river.

Brazil | Brasília | South America | Portuguese is the official language | the real | Brazil is the largest country
in South America and contains most of the Amazon rainforest. Its capital was built on an empty plateau and
inaugurated in 1960 to draw development inland from the coast.

Argentina | Buenos Aires | South America | Spanish is the official language | the Argentine peso | The country
stretches from subtropical forests in the north to the cold tip of Patagonia. Aconcagua, in the Andes near its
western border, is the highest mountain in the Americas.

Canada | Ottawa | North America | English and French are the official languages | the Canadian dollar | Canada is
the second-largest country in the world by area and has the longest coastline of any country. Most Canadians live
within a few hundred kilometres of the border with the United States.

Australia | Canberra | Oceania | English is the national language | the Australian dollar | Canberra was
purpose-built as the capital, partly as a compromise between the rival cities of Sydney and Melbourne. Off the
north-east coast lies the Great Barrier Reef, the largest coral reef system on Earth.

Egypt | Cairo | North Africa | Arabic is the official language | the Egyptian pound | Almost all Egyptians live
along the narrow, fertile valley and delta of the Nile. The pyramids of Giza, on the edge of Cairo, were built more
than four and a half thousand years ago.

Kenya | Nairobi | East Africa | Swahili and English are the official languages | the Kenyan shilling | The country
takes its name from Mount Kenya, its highest mountain. The Great Rift Valley runs through the west of Kenya, and its
savannas are home to large herds of wildlife.

Nigeria | Abuja | West Africa | English is the official language | the naira | Nigeria is the most populous country
in Africa. In 1991 the seat of government moved from the coastal city of Lagos to Abuja, a planned city near the
centre of the country.

Mexico | Mexico City | North America | Spanish is by far the most widely spoken language | the Mexican peso | Mexico
City stands on the site of Tenochtitlan, the Aztec capital built on an island in a lake. The country is one of the
world's most biologically diverse.

Russia | Moscow | Eastern Europe and Northern Asia | Russian is the official language | the ruble | Russia is the
largest country in the world by area and spans eleven time zones. The Volga, which flows through its European part,
is the longest river in Europe.

Norway | Oslo | Northern Europe | Norwegian is the official language | the Norwegian krone | Norway's long western
coastline is cut by deep fjords carved by glaciers during the ice ages. Large offshore oil and gas reserves have
made it one of the wealthiest countries per person.

Sweden | Stockholm | Northern Europe | Swedish is the official language | the Swedish krona | Sweden is one of the
largest countries in Europe by area, with extensive forests and tens of thousands of lakes. Its capital is spread
across fourteen islands where Lake Mälaren meets the Baltic Sea.

Finland | Helsinki | Northern Europe | Finnish and Swedish are the official languages | the euro | Finland is
sometimes called the land of a thousand lakes, although it actually has far more than that. Forests cover roughly
three quarters of the country.

Poland | Warsaw | Central Europe | Polish is the official language | the złoty | The Vistula, Poland's longest
river, flows through both Kraków and Warsaw on its way to the Baltic Sea. Much of Warsaw's historic centre was
carefully rebuilt after being destroyed in the Second World War.

Greece | Athens | Southern Europe | Greek is the official language | the euro | Greece has thousands of islands
scattered across the Aegean and Ionian seas. Ancient Athens is often called the birthplace of democracy, and the
Olympic Games began at Olympia in the Peloponnese.

Turkey | Ankara | south-eastern Europe and western Asia | Turkish is the official language | the Turkish lira |
Although Ankara is the capital, the largest city is Istanbul, which straddles the Bosporus strait between Europe and
Asia. The region of Cappadocia is known for its rock formations and cave dwellings.

Thailand | Bangkok | Southeast Asia | Thai is the official language | the baht | Thailand is the only country in
Southeast Asia that was never colonised by a European power. The Chao Phraya river flows through the central plains
and the capital.

Vietnam | Hanoi | Southeast Asia | Vietnamese is the official language | the dong | Vietnam is a long, narrow
country on the eastern edge of the Indochinese peninsula. The Red River delta surrounds Hanoi in the north, and the
Mekong delta dominates the far south.

South Korea | Seoul | East Asia | Korean is the official language | the won | South Korea occupies the southern part
of the Korean Peninsula. Its capital region is home to about half of the country's population, and it is a leading
maker of electronics, ships and cars.

Peru | Lima | South America | Spanish is the main official language, alongside Quechua and Aymara | the sol | Peru
was the heart of the Inca Empire, whose mountain citadel of Machu Picchu was built in the fifteenth century. The
Amazon river has its most distant sources in the Peruvian Andes.

Chile | Santiago | South America | Spanish is the main language | the Chilean peso | Chile is a long, narrow country
squeezed between the Andes and the Pacific Ocean, stretching more than 4,000 kilometres from north to south. The
Atacama Desert in its north is one of the driest places on Earth.

Colombia | Bogotá | South America | Spanish is the official language | the Colombian peso | Colombia is the only
South American country with coastlines on both the Pacific Ocean and the Caribbean Sea. It is one of the world's
leading producers of coffee.

New Zealand | Wellington | Oceania | English is the most widely spoken language, and Māori and New Zealand Sign
Language are official languages | the New Zealand dollar | The country consists mainly of two large islands, the
North Island and the South Island. Its isolation allowed unusual wildlife to evolve there, including flightless
birds such as the kiwi.

Iceland | Reykjavík | the North Atlantic Ocean | Icelandic is the national language | the Icelandic króna | Iceland
sits on the Mid-Atlantic Ridge, where the North American and Eurasian plates are pulling apart. Geothermal energy
from its volcanic ground heats most of the country's homes.

Switzerland | Bern | Central Europe | German, French, Italian and Romansh are the national languages | the Swiss
franc | Switzerland is a landlocked, mountainous country, and the Alps cover much of its territory. It has a long
tradition of neutrality in international conflicts.

the Netherlands | Amsterdam | north-western Europe | Dutch is the official language | the euro | A large part of the
country lies below sea level and is protected by dikes, dunes and pumps. Although Amsterdam is the capital, the
government and parliament sit in The Hague.

Morocco | Rabat | North Africa | Arabic and Berber are the official languages | the Moroccan dirham | Morocco has
coastlines on both the Atlantic Ocean and the Mediterranean Sea. The Atlas Mountains run through the middle of the
country and separate the coast from the Sahara.

Ethiopia | Addis Ababa | the Horn of Africa | Amharic is the working language of the federal government | the birr |
Ethiopia is one of the oldest countries in the world and is thought to be the original home of the coffee plant. Its
capital hosts the headquarters of the African Union.

Ghana | Accra | West Africa | English is the official language | the cedi | In 1957 Ghana became one of the first
countries in sub-Saharan Africa to gain independence from colonial rule. Lake Volta, created by a dam on the Volta
River, is one of the largest artificial lakes in the world.

Mongolia | Ulaanbaatar | East Asia | Mongolian is the official language | the tögrög | Mongolia is a landlocked
country between Russia and China and one of the most sparsely populated countries on Earth. Many Mongolians still
follow a herding way of life on its wide grasslands.

Nepal | Kathmandu | South Asia | Nepali is the official language | the Nepalese rupee | Eight of the world's ten
highest mountains lie wholly or partly in Nepal, including Mount Everest on its border with China. The Kathmandu
valley contains several historic royal cities.

Cuba | Havana | the Caribbean | Spanish is the official language | the Cuban peso | Cuba is the largest island in
the Caribbean. Old Havana, with its colonial fortifications and squares, is a World Heritage Site.

Ireland | Dublin | north-western Europe | Irish and English are the official languages | the euro | Ireland's mild,
damp climate keeps its countryside green for most of the year. The River Liffey flows through Dublin into the Irish
Sea.
"""

# name | length in km | course | facts
RIVERS = """
Nile | 6,650 | flows north through north-eastern Africa and empties into the Mediterranean Sea | Its two main
branches, the White Nile and the Blue Nile, meet at Khartoum in Sudan. The Aswan High Dam, finished in 1970, ended
the river's yearly floods in Egypt and created Lake Nasser.

Amazon | 6,400 | rises in the Andes of Peru and crosses northern South America to the Atlantic Ocean | It carries
more water than any other river, roughly a fifth of all the fresh water that rivers deliver to the oceans. Its basin
holds the largest tropical rainforest in the world.

Yangtze | 6,300 | rises on the Tibetan Plateau and flows east across China to the East China Sea near Shanghai | It
is the longest river in Asia and has been a major trade route for centuries. The Three Gorges Dam on its middle
course is one of the largest hydroelectric power stations ever built.

Mississippi | 3,730 | rises at Lake Itasca in Minnesota and flows south to the Gulf of Mexico | Together with its
great tributary the Missouri it forms one of the longest river systems in the world. Its delta near New Orleans
keeps growing with the sediment the river carries.

Danube | 2,850 | rises in the Black Forest of Germany and flows east to the Black Sea | It flows through or along
the borders of ten countries, more than any other river. Four capital cities stand on its banks: Vienna, Bratislava,
Budapest and Belgrade.

Rhine | 1,230 | rises in the Swiss Alps and flows north to the North Sea through the Netherlands | It is one of the
busiest commercial waterways in Europe and links industrial regions of Switzerland, Germany and France with the port
of Rotterdam. Castles and vineyards line its gorge between Bingen and Koblenz.

Volga | 3,530 | rises in the Valdai Hills north-west of Moscow and flows into the Caspian Sea | It is the longest
river in Europe and drains much of western Russia. A chain of dams and reservoirs has turned long stretches of it
into a series of lakes.

Ganges | 2,500 | flows from a glacier in the Himalayas across northern India to the Bay of Bengal | The river is
sacred in Hinduism, and pilgrims bathe in it at cities such as Varanasi. Together with the Brahmaputra it builds the
largest river delta in the world.

Mekong | 4,900 | rises on the Tibetan Plateau and flows through six countries to the South China Sea | It passes
through China, Myanmar, Laos, Thailand, Cambodia and Vietnam. Its river fisheries are among the most productive in
the world.

Yellow River | 5,460 | rises in the mountains of Qinghai and winds across northern China to the Bohai Sea | It takes
its name from the fine yellow loess silt that it carries in huge amounts. Its valley was one of the cradles of early
Chinese civilisation.

Thames | 346 | rises in the Cotswold hills and flows east through London to the North Sea | Tidal waters reach far
upstream, and the Thames Barrier was built to protect London from storm surges. For centuries the river was the main
route of trade for the city.

Seine | 777 | rises in Burgundy and flows north-west through Paris to the English Channel at Le Havre | In Paris the
river is crossed by dozens of bridges, and its banks are a World Heritage Site. Barges still carry freight along it
between Paris and the coast.

Congo | 4,700 | flows through central Africa in a great arc, crossing the equator twice, before reaching the
Atlantic Ocean | It is the deepest river ever measured, with depths of more than 200 metres in places. Only the
Amazon carries more water to the sea.

Niger | 4,180 | rises in the highlands of Guinea and follows a great boomerang-shaped course to the Gulf of Guinea |
In Mali it spreads into a vast inland delta of channels, lakes and floodplains. The river is a lifeline for farmers
and fishers across the dry Sahel.

Zambezi | 2,570 | rises in north-western Zambia and flows east to the Indian Ocean in Mozambique | On the border
between Zambia and Zimbabwe it plunges over Victoria Falls, one of the largest waterfalls in the world. The Kariba
and Cahora Bassa dams hold back two huge reservoirs along its course.

Colorado | 2,330 | rises in the Rocky Mountains and flows south-west towards the Gulf of California | Over millions
of years it carved the Grand Canyon in Arizona. So much of its water is taken for cities and farms that it now
rarely reaches the sea.

Indus | 3,180 | rises in Tibet and flows through Ladakh and Pakistan to the Arabian Sea | Its valley was home to the
Indus Valley Civilisation, one of the world's earliest urban cultures. Today its waters irrigate much of Pakistan's
farmland.

Euphrates | 2,800 | rises in the mountains of eastern Turkey and flows through Syria and Iraq | It joins the Tigris
to form the Shatt al-Arab, which empties into the Persian Gulf. The land between the two rivers, Mesopotamia, saw
the rise of some of the first cities.

Murray | 2,500 | rises in the Australian Alps and flows west to the Southern Ocean near Adelaide | It is the longest
river in Australia and forms much of the border between New South Wales and Victoria. Its basin produces a large
share of the country's food.

Mackenzie | 1,740 | flows north from Great Slave Lake to the Beaufort Sea in the Arctic Ocean | It is the main stem
of the largest river system in Canada. For much of the year its lower course is frozen over.

Elbe | 1,090 | rises in the Krkonoše mountains of the Czech Republic and flows north-west to the North Sea | Dresden
and Hamburg both grew up on its banks, and Hamburg became one of Europe's largest ports. The river has repeatedly
caused severe floods along its middle course.

Tagus | 1,000 | rises in eastern Spain and flows west across the Iberian Peninsula to the Atlantic Ocean | It is the
longest river of the peninsula. Its wide estuary forms the natural harbour of Lisbon.

Orinoco | 2,140 | flows in a great curve through Venezuela to the Atlantic Ocean | A natural channel called the
Casiquiare links its upper course to the Amazon basin. Its delta is a maze of waterways and mangrove forests.

Loire | 1,010 | rises in the Massif Central and flows north and then west to the Atlantic Ocean | It is the longest
river in France. Its middle valley is lined with Renaissance châteaux and is a World Heritage Site.

Jordan | 250 | flows south through the Sea of Galilee and ends in the Dead Sea | Although it is a short river, it
has great religious and historical importance. So much water is now taken from it that the Dead Sea is shrinking.
"""

# name | height in metres | location | facts
MOUNTAINS = """
Mount Everest | 8,849 | in the Himalayas on the border between Nepal and China | It is the highest mountain on Earth
above sea level. Edmund Hillary and Tenzing Norgay made the first confirmed ascent in 1953.

K2 | 8,611 | in the Karakoram range on the border between Pakistan and China | It is the second-highest mountain in
the world and is regarded as much harder to climb than Everest. An Italian expedition made the first ascent in 1954.

Kangchenjunga | 8,586 | in the Himalayas on the border between Nepal and India | It is the third-highest mountain in
the world. Out of respect for local beliefs, many climbers stop just short of its true summit.

Kilimanjaro | 5,895 | in north-eastern Tanzania | It is the highest mountain in Africa and the tallest free-standing
mountain on Earth. The dormant volcano has three cones, Kibo, Mawenzi and Shira, and its summit glaciers are
shrinking.

Denali | 6,190 | in the Alaska Range | It is the highest mountain in North America. Its base-to-summit rise of about
5,500 metres is one of the largest of any mountain on land.

Aconcagua | 6,961 | in the Andes of western Argentina | It is the highest mountain outside Asia. Its normal route
needs no technical climbing, but the altitude makes it a serious undertaking.

Mont Blanc | 4,806 | in the Alps on the border between France and Italy | It is the highest mountain in the Alps.
Its first ascent in 1786 by Jacques Balmat and Michel-Gabriel Paccard is often taken as the birth of modern
mountaineering.

Matterhorn | 4,478 | in the Alps on the border between Switzerland and Italy | Its steep, nearly symmetrical pyramid
is one of the most recognisable shapes in the mountains. Edward Whymper's party reached the top in 1865, but four of
its members died on the descent.

Mount Elbrus | 5,642 | in the Caucasus mountains of southern Russia | This dormant volcano is often counted as the
highest mountain in Europe. Its two summits are covered by a permanent ice cap.

Mount Fuji | 3,776 | on the island of Honshu in Japan | It is the highest mountain in Japan and an active
stratovolcano that last erupted in 1707. Its snow-capped cone has inspired artists and pilgrims for centuries.

Vinson Massif | 4,892 | in the Ellsworth Mountains of Antarctica | It is the highest mountain in Antarctica. It was
first climbed in 1966, and its remoteness and cold make every expedition a major logistical effort.

Mount Kosciuszko | 2,228 | in the Snowy Mountains of New South Wales | It is the highest mountain on the Australian
mainland. The explorer Paweł Strzelecki named it in 1840 after the Polish national hero Tadeusz Kościuszko.

Mauna Kea | 4,207 | on the island of Hawaii | Measured from its base on the ocean floor it is more than 10,000
metres tall, taller than Everest. The dry, thin air above its summit makes it one of the best sites for astronomical
observatories.

Table Mountain | 1,085 | above the city of Cape Town in South Africa | Its long, flat summit plateau gives it its
name. Clouds often spill over its edge in a layer that locals call the tablecloth.

Ben Nevis | 1,345 | in the Grampian Mountains of Scotland | It is the highest mountain in the British Isles. Its
summit is in cloud on most days of the year.

Mount Olympus | 2,917 | in northern Greece near the Aegean coast | It is the highest mountain in Greece. In Greek
mythology it was the home of the twelve Olympian gods.
"""

# name | year | creator | facts
LANGUAGES = """
Fortran | 1957 | a team at IBM led by John Backus | It was one of the first high-level programming languages and let
scientists write formulas instead of machine instructions. Updated versions are still used for weather forecasting
and physics simulations.

Lisp | 1958 | John McCarthy | Programs in Lisp are written as nested lists in parentheses, so code and data share
the same form. Lisp introduced automatic garbage collection and had a strong influence on research in artificial
intelligence.

COBOL | 1959 | a committee of industry and government experts, building on the work of Grace Hopper | It was
designed for business data processing and uses wordy, English-like statements. Large amounts of COBOL code still run
banking and government systems.

BASIC | 1964 | John Kemeny and Thomas Kurtz at Dartmouth College | It was created so that students outside science
and engineering could use computers. Versions of BASIC came built into many home computers of the late 1970s and
1980s.

C | 1972 | Dennis Ritchie at Bell Labs | The Unix operating system was rewritten in C in 1973, which made it
unusually easy to move to new hardware. C gives the programmer direct control over memory and remains widely used
for operating systems and embedded devices.

Smalltalk | 1972 | Alan Kay and colleagues at Xerox PARC | In Smalltalk everything is an object, and objects
communicate by sending messages. Its programming environment pioneered ideas later found in graphical user
interfaces.

Prolog | 1972 | Alain Colmerauer and Philippe Roussel | A Prolog program states facts and rules, and the system
answers questions by logical search. It became a popular language for artificial intelligence research and natural
language processing.

SQL | 1974 | Donald Chamberlin and Raymond Boyce at IBM | It was originally called SEQUEL and was designed to query
relational databases. Instead of describing how to fetch data, an SQL query describes what result is wanted.

C++ | 1985 | Bjarne Stroustrup | It began as an extension of C with classes and grew into a large language
supporting several programming styles. C++ is used for games, browsers and other software where speed matters.

Erlang | 1986 | Joe Armstrong and colleagues at Ericsson | It was designed for telephone switches that must keep
running for years. Erlang programs are built from many lightweight processes that communicate by passing messages.

Perl | 1987 | Larry Wall | Perl became known for its powerful text processing and regular expressions. In the early
days of the web it was a common language for server-side scripts.

Haskell | 1990 | a committee of researchers | It is a purely functional language in which expressions are evaluated
lazily, only when their values are needed. The language is named after the logician Haskell Curry.

Python | 1991 | Guido van Rossum | Python uses indentation to mark blocks of code and emphasises readability. Its
name comes from the British comedy group Monty Python, and it is now widely used in science and machine learning.

Lua | 1993 | a team at the Pontifical Catholic University of Rio de Janeiro | Lua is small and easy to embed inside
larger programs. It is popular as a scripting language in video games.

Java | 1995 | James Gosling at Sun Microsystems | Java programs are compiled to bytecode that runs on a virtual
machine, which gave rise to the slogan write once, run anywhere. It became a mainstay of enterprise software and of
Android apps.

JavaScript | 1995 | Brendan Eich at Netscape | The first version was written in about ten days to make web pages
interactive. Every major web browser now runs JavaScript, and it is also used on servers.

Ruby | 1995 | Yukihiro Matsumoto | Ruby was designed to make programmers happy and productive. The Ruby on Rails web
framework, released in 2004, made it especially popular for building websites.

PHP | 1995 | Rasmus Lerdorf | It began as a set of tools for maintaining a personal home page. PHP went on to power
a large share of the world's websites, including many content management systems.

Go | 2009 | Robert Griesemer, Rob Pike and Ken Thompson at Google | Go aims for simplicity and fast compilation.
Lightweight threads called goroutines make it easy to write programs that do many things at once.

Kotlin | 2011 | the software company JetBrains | Kotlin runs on the Java virtual machine and works smoothly with
existing Java code. In 2019 Google made it the preferred language for Android development.

TypeScript | 2012 | Anders Hejlsberg and colleagues at Microsoft | TypeScript adds optional static types to
JavaScript and compiles to plain JavaScript. The types help catch mistakes in large code bases before the program
runs.

Swift | 2014 | Chris Lattner and colleagues at Apple | Swift was introduced as a safer and more modern successor to
Objective-C for Apple platforms. It checks many common errors at compile time.

Rust | 2015 | Graydon Hoare, with later support from Mozilla | Rust reached its first stable release in 2015. Its
ownership system lets the compiler guarantee memory safety without a garbage collector.
"""

ASTRONOMY = """
The Sun is the star at the centre of the Solar System and contains about 99.8 per cent of its mass. It is a nearly
perfect sphere of hot plasma that produces energy by fusing hydrogen into helium in its core. Light leaving its
surface takes a little over eight minutes to reach the Earth. The Sun is about 4.6 billion years old and is expected
to shine in much the same way for several billion years more.

Mercury is the smallest planet in the Solar System and the closest to the Sun. It has almost no atmosphere to hold
heat, so its surface swings between scorching days and bitterly cold nights. A year on Mercury lasts only 88 Earth
days. Its cratered surface looks much like that of the Moon.

Venus is the second planet from the Sun and is similar to the Earth in size. A thick atmosphere of carbon dioxide
traps heat so effectively that its surface is hotter than that of Mercury, hot enough to melt lead. Clouds of
sulfuric acid hide the ground from view, and Venus rotates very slowly in the opposite direction to most planets.
After the Moon it is the brightest natural object in the night sky.

The Earth is the third planet from the Sun and the only world known to support life. About 71 per cent of its
surface is covered by oceans, and its atmosphere is rich in nitrogen and oxygen. The planet's molten outer core
generates a magnetic field that shields the surface from much of the solar wind. The Earth orbits the Sun once a
year at an average distance of about 150 million kilometres.

The Moon is the Earth's only natural satellite and the fifth-largest moon in the Solar System. It always keeps the
same face towards the Earth because its rotation is locked to its orbit. Its gravity raises the ocean tides, and its
dark plains, called maria, are ancient floods of volcanic lava. Twelve astronauts walked on its surface during the
Apollo missions between 1969 and 1972.

Mars is the fourth planet from the Sun and is often called the Red Planet because iron oxide dust colours its
surface. It has a thin atmosphere of carbon dioxide, polar ice caps and the tallest known volcano in the Solar
System, Olympus Mons. Dry river valleys and lake beds show that liquid water once flowed on its surface. Several
robotic rovers have explored the planet since 1997.

Jupiter is the largest planet in the Solar System, more massive than all the other planets combined. It is a gas
giant made mostly of hydrogen and helium and has no solid surface. The Great Red Spot, a storm larger than the
Earth, has been observed for well over a century. Its four largest moons were discovered by Galileo Galilei in 1610.

Saturn is the sixth planet from the Sun and is famous for its broad, bright rings. The rings are made of countless
pieces of ice and rock, ranging from grains of dust to boulders the size of houses. Saturn is the least dense of the
planets, less dense on average than water. Its largest moon, Titan, is bigger than the planet Mercury.

Uranus is the seventh planet from the Sun and was the first to be discovered with a telescope, by William Herschel
in 1781. It is an ice giant whose atmosphere contains methane, which gives it a pale blue-green colour. The planet
is tipped over so far that it rolls around the Sun on its side. As a result, each pole spends about 42 years in
continuous sunlight followed by 42 years of darkness.

Neptune is the eighth and most distant planet from the Sun. Its position was predicted mathematically from
irregularities in the orbit of Uranus, and it was found close to the predicted spot in 1846. Neptune has the
strongest winds measured on any planet. Its largest moon, Triton, orbits in the opposite direction to the planet's
rotation.

Pluto is a dwarf planet in the Kuiper Belt, a region of icy bodies beyond Neptune. It was discovered by Clyde
Tombaugh in 1930 and was counted as the ninth planet until 2006, when astronomers adopted a new definition of a
planet. In 2015 the New Horizons spacecraft flew past it and revealed mountains of water ice and a large, bright
plain of nitrogen ice. Pluto's largest moon, Charon, is about half its diameter.

Titan is the largest moon of Saturn and the only moon known to have a dense atmosphere. Its air is mostly nitrogen,
and at its frigid surface temperature methane and ethane can exist as liquids. Rivers, lakes and seas of these
hydrocarbons have been mapped by radar. In 2005 the Huygens probe landed on Titan and sent back pictures of a
landscape strewn with rounded pebbles of ice.

Europa is one of the four large moons of Jupiter and is slightly smaller than the Earth's Moon. Its surface is a
crust of water ice crossed by long cracks and ridges. Scientists think a salty ocean of liquid water lies beneath
the ice, kept warm by tidal heating from Jupiter. This makes Europa one of the most promising places to search for
life beyond the Earth.

The asteroid belt is a ring-shaped region between the orbits of Mars and Jupiter that contains a great number of
rocky and metallic bodies. Despite the large number of objects, the belt is mostly empty space, and spacecraft have
crossed it without difficulty. The largest object in the belt, Ceres, is classed as a dwarf planet. Jupiter's
gravity is thought to have prevented these bodies from gathering into a single planet.

The Milky Way is the galaxy that contains the Solar System. It is a barred spiral galaxy roughly 100,000 light-years
across and contains hundreds of billions of stars. From the Earth it appears as a faint band of light across the
night sky, which is where its name comes from. At its centre lies a supermassive black hole with about four million
times the mass of the Sun.

A black hole is a region of space where gravity is so strong that nothing, not even light, can escape once it passes
the boundary known as the event horizon. Stellar black holes form when very massive stars collapse at the end of
their lives. Much larger black holes, with millions or billions of times the mass of the Sun, sit at the centres of
most large galaxies. In 2019 astronomers released the first image of the shadow of a black hole, in the galaxy
Messier 87.

Halley's Comet is the best known of the periodic comets and returns to the inner Solar System about every 76 years.
The astronomer Edmond Halley realised that several historical sightings were the same object and predicted its
return in 1758. Its most recent appearance was in 1986, when several spacecraft flew close to its nucleus. The comet
is next expected to be visible from the Earth in 2061.
"""

CITIES = """
London is the capital of the United Kingdom and stands on the River Thames in the south-east of England. It grew
from the Roman settlement of Londinium, founded in the first century AD. The city became the centre of a worldwide
trading empire and is still one of the leading financial centres of the world. Its landmarks include the Tower of
London, Westminster Abbey and the Houses of Parliament.

Paris is the capital of France and lies on the River Seine. The oldest part of the city is the Île de la Cité, an
island in the river where Notre-Dame cathedral stands. In the middle of the nineteenth century large parts of the
centre were rebuilt with wide boulevards under the direction of Baron Haussmann. The city is a world centre of art,
fashion and cuisine.

Rome is the capital of Italy and was the centre of the ancient Roman Empire. According to legend it was founded in
753 BC by Romulus, and it grew up on seven hills beside the River Tiber. Ancient monuments such as the Colosseum and
the Pantheon stand among churches and palaces from later centuries. Vatican City, the smallest independent state in
the world, lies within the city.

Istanbul is the largest city of Turkey and straddles the Bosporus, the strait that separates Europe from Asia. It
was founded as the Greek colony of Byzantium and later, as Constantinople, became the capital of the Eastern Roman
Empire. From 1453 it was the capital of the Ottoman Empire. The Hagia Sophia, completed in 537, is its most
celebrated building.

Cairo is the capital of Egypt and the largest city in the Arab world. It lies on the Nile just south of the point
where the river divides into its delta. The city was founded in 969 by the Fatimid dynasty, although settlements on
the site are much older. Historic Cairo contains hundreds of mosques and madrasas, and the pyramids of Giza stand on
its western edge.

Tokyo is the capital of Japan and the centre of one of the largest metropolitan areas in the world. It was known as
Edo when it was the seat of the Tokugawa shoguns, and it was renamed Tokyo, meaning eastern capital, in 1868. The
city was largely rebuilt after the earthquake of 1923 and again after the Second World War. Today it is known for
its efficient railway network and its mix of modern towers and quiet temples.

Beijing is the capital of China and one of its oldest cities. At its heart lies the Forbidden City, the vast palace
complex of the Ming and Qing emperors, built in the early fifteenth century. The city is laid out around a
north-south axis, with ring roads encircling the centre. Sections of the Great Wall can be visited in the mountains
north of the city.

Shanghai is the largest city in China and a major global port. It lies where the Yangtze meets the East China Sea,
on the banks of the Huangpu River. In the nineteenth century it grew rapidly as a treaty port, and the grand
buildings of the Bund date from that era. Across the river, the Pudong district has become a skyline of modern
skyscrapers.

Kyoto was the capital of Japan for more than a thousand years, from 794 until 1868. The city is laid out on a grid
modelled on ancient Chinese capitals. It is famous for its Buddhist temples, Shinto shrines, gardens and traditional
wooden houses. Many of its historic monuments are protected as a World Heritage Site.

Venice is a city in north-eastern Italy built on more than a hundred small islands in a shallow lagoon. Canals take
the place of streets, and boats are the main means of transport. For centuries the Republic of Venice was a great
maritime and trading power in the Mediterranean. The city is threatened by rising water, and a system of mobile
flood barriers now protects the lagoon.

Amsterdam is the capital of the Netherlands and is known for its network of canals. The main ring of canals was dug
in the seventeenth century, when the city was one of the richest trading ports in the world. Narrow gabled houses
line the canals, and bicycles are the most common way of getting around. Its museums hold famous collections of
Dutch painting.

Prague is the capital of the Czech Republic and stands on the Vltava river. Its historic centre survived the wars of
the twentieth century largely intact. The Charles Bridge, begun in the fourteenth century, links the Old Town with
the castle district on the hill above. The city's mix of Gothic, Baroque and Art Nouveau buildings draws visitors
from around the world.

Vienna is the capital of Austria and lies on the Danube. For centuries it was the seat of the Habsburg monarchy, and
its palaces and ring boulevard reflect that imperial past. Composers such as Haydn, Mozart and Beethoven worked in
the city, which remains a centre of classical music. Its coffee houses are a long-standing part of local culture.

Saint Petersburg is the second-largest city of Russia and lies at the mouth of the Neva river on the Baltic Sea. It
was founded by Peter the Great in 1703 and served as the capital of the Russian Empire for about two centuries. The
city is built on many islands linked by bridges and canals. The Hermitage Museum, housed partly in the Winter
Palace, holds one of the largest art collections in the world.

New York City is the most populous city in the United States and lies at the mouth of the Hudson River. It began as
the Dutch trading post of New Amsterdam and was renamed when the English took control in 1664. The Statue of
Liberty, dedicated in 1886, greeted millions of immigrants arriving by sea. Manhattan's skyline of skyscrapers has
become a symbol of the city.

Rio de Janeiro is a large city on the Atlantic coast of Brazil and was the country's capital until 1960. It lies
between mountains and the sea around Guanabara Bay. The statue of Christ the Redeemer, completed in 1931, looks down
on the city from the peak of Corcovado. Rio is famous for its beaches and for its yearly carnival.

Sydney is the largest city in Australia and lies around one of the world's finest natural harbours. It was founded
in 1788 as a British penal colony. The Sydney Harbour Bridge opened in 1932, and the Sydney Opera House, with its
sail-like roofs, opened in 1973. The city's beaches and harbour make water sports part of everyday life.

Cape Town is a port city near the south-western tip of Africa, overlooked by Table Mountain. It was founded in 1652
as a supply station for ships of the Dutch East India Company sailing between Europe and Asia. It is the seat of
South Africa's parliament. The waters off its coast mix the cold Benguela current with warmer seas.

Mumbai is the largest city in India and its financial capital. It was originally spread across seven islands, which
were joined into a single landmass by land reclamation over several centuries. Its busy natural harbour made it a
major port of the British Empire. The city is also the centre of a large Hindi-language film industry.

Singapore is a city-state on an island at the southern tip of the Malay Peninsula. A British trading post was
established there in 1819, and the country became independent in 1965. It has one of the busiest ports in the world
and is a major financial centre. Despite its dense population, the city is known for its parks and green spaces.

Mexico City is the capital of Mexico and one of the largest cities in the Americas. It was built by the Spanish on
the ruins of Tenochtitlan, the Aztec capital that stood on an island in Lake Texcoco. Because the old lake bed is
soft, parts of the city are slowly sinking. Its main square, the Zócalo, is one of the largest city squares in the
world.

Athens is the capital of Greece and one of the oldest continuously inhabited cities in the world. In the fifth
century BC it was the leading city of ancient Greece and a centre of philosophy, drama and democracy. The Parthenon,
a temple to the goddess Athena, still crowns the rocky hill of the Acropolis. The modern city spreads across a wide
basin surrounded by mountains.

Edinburgh is the capital of Scotland. Its castle stands on a rock formed from the plug of an ancient volcano, and
the Royal Mile runs downhill from it to the Palace of Holyroodhouse. The medieval Old Town contrasts with the
orderly Georgian streets of the New Town, built from the late eighteenth century. Every August the city hosts some
of the largest arts festivals in the world.

Barcelona is the second-largest city of Spain and the capital of Catalonia, on the Mediterranean coast. In the
nineteenth century the city expanded onto a grid of wide streets with distinctive cut-off corners. The architect
Antoni Gaudí designed several of its best-known buildings, including the basilica of the Sagrada Família, begun in
1882 and still being completed. The city is also known for its busy port and long beaches.
"""

TECHNOLOGY = """
The wheel is one of the oldest mechanical inventions. The earliest known wheeled vehicles appeared in Mesopotamia
and neighbouring regions around the middle of the fourth millennium BC. Early wheels were solid discs of wood, and
lighter spoked wheels were developed later for fast war chariots. Before the wheel was used for transport, a similar
rotating disc served as the potter's wheel.

Paper was developed in China, and the court official Cai Lun is traditionally credited with improving the process
around AD 105. Early paper was made from tree bark, hemp, rags and old fishing nets beaten into a pulp and dried on
screens. The technique spread slowly westward along trade routes, reaching the Islamic world in the eighth century
and Europe a few centuries later. Cheap paper made books, records and letters far more common.

Gunpowder was invented in China, where alchemists searching for elixirs discovered that a mixture of saltpetre,
sulfur and charcoal burned violently. By the tenth century it was being used in fire arrows and simple bombs.
Knowledge of gunpowder reached Europe in the thirteenth century and transformed warfare there. It was also used in
mining and road building before modern explosives replaced it.

The magnetic compass uses a magnetised needle that aligns itself with the Earth's magnetic field. Chinese scholars
described magnetised needles for direction finding during the Song dynasty, and sailors were using compasses by the
twelfth century. The instrument allowed ships to hold a course even when clouds hid the Sun and stars. It became one
of the key tools of the age of ocean exploration.

The printing press with movable metal type was developed by Johannes Gutenberg in Mainz around 1440. His system
combined cast metal letters, an oil-based ink and a press adapted from those used to make wine. The Gutenberg Bible,
printed in the 1450s, showed that books could be produced in large numbers with high quality. Printing spread
rapidly across Europe and helped drive the Reformation and the Scientific Revolution.

The telescope appeared in the Netherlands in 1608, when the spectacle maker Hans Lipperhey applied for a patent on a
device that made distant objects appear closer. Within a year Galileo Galilei had built his own improved instruments
and turned them to the sky. He saw mountains on the Moon, the phases of Venus and four moons orbiting Jupiter. Later
astronomers replaced lenses with curved mirrors to build ever larger telescopes.

The microscope opened up a world too small for the naked eye. In the 1670s the Dutch tradesman Antonie van
Leeuwenhoek used tiny single-lens microscopes of his own making to observe bacteria, sperm cells and other
microorganisms. Around the same time Robert Hooke published drawings of cork in which he described small
compartments that he called cells. Modern electron microscopes can resolve individual atoms.

The steam engine turned heat into mechanical work and powered the Industrial Revolution. Thomas Newcomen built a
practical engine in 1712 to pump water out of mines. James Watt greatly improved its efficiency by adding a separate
condenser, which he patented in 1769. Steam engines went on to drive factories, locomotives and ships.

The spinning jenny, invented by James Hargreaves around 1764, let a single worker spin several threads at once. It
was one of a series of machines that mechanised the British textile industry. The water frame and the spinning mule
soon followed, and production moved from homes into large mills. These changes made cloth much cheaper and reshaped
working life.

The Jacquard loom, demonstrated by Joseph Marie Jacquard in 1804, used chains of punched cards to control the
pattern woven into fabric. Each card decided which threads were lifted for one row of the weave. Changing the cards
changed the pattern without rebuilding the machine. The idea of storing instructions on punched cards later inspired
early calculating machines and computers.

The railway age began in Britain in the early nineteenth century. The Stockton and Darlington Railway opened in 1825
as the first public railway to use steam locomotives. In 1829 George and Robert Stephenson's locomotive Rocket won
the Rainhill trials, and the Liverpool and Manchester Railway opened the following year. Within decades railways had
shrunk travel times across whole continents.

The electric telegraph sent messages as pulses of current along wires. Samuel Morse and his collaborators developed
a practical system and a code of dots and dashes, and in 1844 Morse sent the message What hath God wrought from
Washington to Baltimore. Undersea cables soon linked continents, and the first lasting transatlantic cable was
completed in 1866. For the first time news could travel faster than a horse or a ship.

Photography grew out of experiments with light-sensitive chemicals. Around 1826 Nicéphore Niépce made the oldest
surviving photograph, a view from a window that needed an exposure of many hours. In 1839 Louis Daguerre announced
the daguerreotype, which produced sharp images on silvered copper plates. Later processes based on negatives allowed
any number of prints to be made from a single exposure.

The telephone converts sound into electrical signals and back again. Alexander Graham Bell received a patent for it
in 1876, although several other inventors were working on similar devices at the time. Telephone exchanges, first
operated by hand and later automatically, connected callers to each other. Within a few decades the telephone had
become a common sight in offices and homes.

The incandescent light bulb produces light by heating a thin filament until it glows. Joseph Swan in England and
Thomas Edison in the United States both developed practical bulbs around 1879. Edison also built a system of power
stations and wiring to supply electricity to customers. Electric lighting gradually replaced gas lamps in streets
and homes.

The internal combustion engine burns fuel inside a cylinder rather than in a separate boiler. In 1876 Nicolaus Otto
built a successful four-stroke engine, the cycle still used in most car engines today. Karl Benz patented a motor
car powered by such an engine in 1886. Rudolf Diesel later developed an engine in which fuel ignites from the heat
of compressed air.

The Ford Model T, introduced in 1908, was one of the first cars that many ordinary families could afford. In 1913
Henry Ford's factory introduced a moving assembly line, which cut the time needed to build a car dramatically. As
production costs fell, so did the price of the car. By the time production ended in 1927, about fifteen million had
been built.

Radio communication uses electromagnetic waves to carry signals without wires. Heinrich Hertz demonstrated such
waves in the late 1880s, and Guglielmo Marconi developed practical wireless telegraphy in the following decade. In
1901 Marconi reported receiving a signal sent across the Atlantic Ocean. Broadcasting of speech and music to the
public began in the early 1920s.

X-rays were discovered by Wilhelm Röntgen in 1895, when he noticed that a screen glowed while he was experimenting
with a cathode-ray tube. The invisible rays passed through soft tissue but were stopped by bone, and within months
doctors were using them to find fractures and bullets. Röntgen received the first Nobel Prize in Physics in 1901.
X-rays are still used in medicine, security screening and the study of crystals.

The Wright brothers made the first controlled, sustained flights in a powered aircraft on 17 December 1903 near
Kitty Hawk, North Carolina. Their longest flight that day lasted 59 seconds. A key part of their success was a
system for controlling the aircraft's roll by twisting its wings. Within a few decades aircraft were carrying
passengers and mail across oceans.

The first liquid-fuelled rocket was launched by Robert Goddard in Massachusetts in 1926. It flew for only a few
seconds and climbed about twelve metres, but it proved that liquid propellants could work. Rocket development
accelerated greatly during and after the Second World War. Liquid-fuelled rockets later carried satellites and
astronauts into space.

Penicillin was discovered in 1928 by Alexander Fleming, who noticed that a mould contaminating one of his bacterial
cultures had killed the bacteria around it. More than a decade later Howard Florey and Ernst Chain found ways to
purify the drug and test it in patients. Mass production during the Second World War saved many wounded soldiers.
Penicillin opened the era of antibiotics.

The jet engine draws in air, compresses it, burns fuel in it and pushes the hot exhaust out of the back at high
speed. Frank Whittle in Britain and Hans von Ohain in Germany developed the idea independently in the 1930s. The
first jet-powered aircraft flew in 1939. Jet airliners later made long-distance air travel fast and affordable.

ENIAC, completed in the United States in 1945, was one of the first general-purpose electronic digital computers. It
filled a large room, used about 18,000 vacuum tubes and was programmed by setting switches and plugging cables. It
was built to calculate artillery firing tables. Its speed, thousands of operations per second, was astonishing for
its time.

The transistor was invented at Bell Labs in 1947 by John Bardeen, Walter Brattain and William Shockley. This small
semiconductor device can amplify signals and switch currents on and off. It replaced bulky and unreliable vacuum
tubes and made portable radios and compact computers possible. The three inventors shared the Nobel Prize in Physics
in 1956.

The integrated circuit places many transistors and other components on a single piece of semiconductor. Jack Kilby
at Texas Instruments demonstrated the first working example in 1958, and Robert Noyce at Fairchild Semiconductor
developed a more practical silicon version soon after. The number of transistors on a chip doubled roughly every two
years for decades, a trend known as Moore's law. Modern processors contain billions of transistors.

Sputnik 1, launched by the Soviet Union on 4 October 1957, was the first artificial satellite to orbit the Earth. It
was a polished metal sphere with four long antennas that broadcast simple radio beeps. Its launch surprised the
world and marked the start of the space age. The shock of Sputnik led the United States to create NASA the following
year.

The laser produces a narrow, intense beam of light of a single colour. Theodore Maiman built the first working laser
in 1960, using a synthetic ruby crystal. Lasers were at first described as a solution looking for a problem. Today
they read barcodes, cut metal, carry data through optical fibres and are used in eye surgery.

Apollo 11 carried the first humans to land on the Moon. On 20 July 1969 Neil Armstrong and Buzz Aldrin set their
lunar module down in the Sea of Tranquillity while Michael Collins orbited above. Armstrong was the first person to
step onto the surface. The crew returned safely to Earth with samples of lunar rock and soil.

ARPANET, a research network funded by the United States Department of Defense, sent its first message between two
computers in 1969. It used packet switching, in which data is broken into small pieces that travel independently and
are reassembled at the destination. On 1 January 1983 the network switched to the TCP/IP protocols, which are still
the foundation of the internet. Networks around the world gradually joined this common system.

The World Wide Web was proposed by Tim Berners-Lee at CERN in 1989 as a way for scientists to share documents. He
wrote the first web browser and web server and defined the basic technologies of URLs, HTTP and HTML. In 1993 CERN
made the web's software freely available to everyone. Graphical browsers soon brought the web to the general public.

The Global Positioning System is a network of satellites operated by the United States that lets receivers work out
their position anywhere on Earth. Each satellite carries precise atomic clocks and continuously broadcasts its time
and position. A receiver calculates its location from the tiny differences in arrival time of signals from several
satellites. Other countries have since built similar satellite navigation systems.

The lithium-ion battery stores energy by moving lithium ions between two electrodes. Work by Stanley Whittingham,
John Goodenough and Akira Yoshino in the 1970s and 1980s led to the first commercial cells in 1991. The batteries
are light, rechargeable and hold a lot of energy for their size. The three scientists shared the Nobel Prize in
Chemistry in 2019.

The Hubble Space Telescope was launched into orbit in 1990. A flaw in its main mirror at first blurred its images,
but astronauts installed corrective optics in 1993. Above the distorting effect of the atmosphere, Hubble took sharp
images of distant galaxies, nebulae and planets. Its observations helped to measure the expansion rate of the
universe.

The Suez Canal, opened in 1869, links the Mediterranean Sea with the Red Sea across Egypt. It allowed ships
travelling between Europe and Asia to avoid the long voyage around Africa. The canal has no locks, because the two
seas are at nearly the same level. It remains one of the busiest shipping routes in the world.

The Panama Canal, opened in 1914, cuts across the narrow isthmus of Panama to connect the Atlantic and Pacific
oceans. Ships are raised and lowered by locks to cross an artificial lake in the middle of the route. An earlier
French attempt to build a canal there had failed, in part because of tropical diseases. A wider set of locks opened
in 2016 to handle larger ships.

The Haber-Bosch process makes ammonia from nitrogen in the air and hydrogen. Fritz Haber showed how to carry out the
reaction in the laboratory, and Carl Bosch scaled it up to industrial production in the 1910s. Ammonia is the
starting point for most synthetic fertilisers. The process has greatly increased the amount of food the world can
grow.

Smallpox vaccination began with the work of Edward Jenner, who in 1796 showed that infection with the mild disease
cowpox protected a person against smallpox. The word vaccine comes from the Latin word for cow. Over the following
two centuries vaccination campaigns spread around the world. In 1980 smallpox was declared the first human disease
to be eradicated.

Charles Babbage designed mechanical calculating engines in nineteenth-century England. His Analytical Engine, never
completed, would have had a memory, a processing unit and programs supplied on punched cards. In 1843 Ada Lovelace
published notes on the engine that included a method for calculating Bernoulli numbers. Her notes are often
described as the first published computer program.

In 1936 the mathematician Alan Turing described an abstract machine that reads and writes symbols on an endless tape
according to a table of rules. He showed that a single universal machine of this kind could imitate any other. The
Turing machine became the standard model of what can be computed. Turing later worked on code breaking and on early
electronic computers.

Gene editing with CRISPR uses a guide molecule of RNA to lead a cutting enzyme to a chosen place in DNA. In 2012
Jennifer Doudna and Emmanuelle Charpentier showed how this system, borrowed from the defences of bacteria, could be
programmed to cut DNA at will. The method is far simpler and cheaper than earlier techniques. Doudna and Charpentier
received the Nobel Prize in Chemistry in 2020.
"""

SCIENCE = """
Photosynthesis is the process by which plants, algae and some bacteria use the energy of sunlight to make sugars
from carbon dioxide and water. The reactions take place mainly in chloroplasts, which contain the green pigment
chlorophyll. Oxygen is released as a by-product, and almost all of the oxygen in the atmosphere has come from
photosynthesis. The sugars produced feed the plant and, directly or indirectly, nearly every other living thing.

Plate tectonics is the theory that the Earth's outer shell is broken into large rigid plates that move slowly over
the hotter, softer mantle beneath. The plates move a few centimetres a year, about as fast as fingernails grow.
Where plates pull apart, new crust forms at mid-ocean ridges; where they collide, mountains rise or one plate sinks
beneath another. Most earthquakes and volcanoes occur along plate boundaries.

Continental drift was proposed by the German scientist Alfred Wegener in 1912. He noticed that the coastlines of
South America and Africa fit together like pieces of a puzzle and that matching fossils and rocks are found on both
sides of the Atlantic. Wegener suggested that the continents had once formed a single supercontinent, which he
called Pangaea. His idea was widely rejected until evidence from the ocean floor in the 1960s led to the theory of
plate tectonics.

Natural selection is the process by which organisms with traits better suited to their environment tend to survive
and reproduce more than others. Over many generations, this can change the characteristics of a population. Charles
Darwin and Alfred Russel Wallace presented the idea together in 1858, and Darwin developed it in detail in On the
Origin of Species the following year. Natural selection is the main mechanism of evolution.

DNA, or deoxyribonucleic acid, is the molecule that carries the genetic instructions of living things. In 1953 James
Watson and Francis Crick proposed that it has the shape of a double helix, drawing on X-ray images made by Rosalind
Franklin and Maurice Wilkins. The two strands are held together by pairs of bases: adenine with thymine, and guanine
with cytosine. When a cell divides, each strand serves as a template for a new partner.

The periodic table arranges the chemical elements in order of increasing atomic number, in rows and columns that
group elements with similar properties. Dmitri Mendeleev published an early version in 1869 and left gaps for
elements that had not yet been discovered. When gallium, scandium and germanium were found, their properties matched
his predictions closely. The modern table contains 118 confirmed elements.

The speed of light in a vacuum is exactly 299,792,458 metres per second, a value that is now used to define the
metre. Nothing carrying information can travel faster. Light slows down when it passes through materials such as
water or glass, which is why lenses bend it. Light from the Sun takes a little over eight minutes to reach the
Earth, and light from the nearest other star takes more than four years.

Isaac Newton published his three laws of motion in 1687 in his book known as the Principia. The first law says that
an object keeps moving at a steady speed in a straight line unless a force acts on it. The second relates force to
mass and acceleration, and the third says that every action has an equal and opposite reaction. In the same book
Newton described universal gravitation, which explains both falling apples and the orbits of planets.

Albert Einstein's general theory of relativity, completed in 1915, describes gravity as the curving of space and
time by mass and energy. It explained a small irregularity in the orbit of Mercury that Newton's theory could not.
In 1919 observations during a solar eclipse showed that starlight is bent as it passes the Sun, as the theory
predicted. The satellite navigation system in every smartphone must correct for effects of relativity to stay
accurate.

Quantum mechanics describes the behaviour of matter and light on the scale of atoms and smaller particles. In this
realm energy comes in discrete packets, and particles such as electrons also behave like waves. The theory predicts
only the probabilities of different outcomes, not certainties. Despite its strangeness, it underlies modern
chemistry and technologies such as lasers and transistors.

Thermodynamics is the branch of physics that deals with heat, work and energy. Its first law states that energy
cannot be created or destroyed, only changed from one form to another. The second law says that the total entropy, a
measure of disorder, of an isolated system never decreases, which is why heat flows from hot objects to cold ones on
its own. These laws set limits on the efficiency of every engine and refrigerator.

An atom is the smallest unit of a chemical element. It has a tiny, dense nucleus of protons and neutrons surrounded
by a cloud of electrons. The number of protons in the nucleus, called the atomic number, determines which element
the atom belongs to. Atoms are mostly empty space: if a nucleus were the size of a marble, the whole atom would be
about the size of a football stadium.

Isotopes are forms of the same element whose atoms have different numbers of neutrons. Many isotopes are stable, but
some are radioactive and decay into other elements over time. The half-life of a radioactive isotope is the time it
takes for half of a sample to decay. Half-lives range from tiny fractions of a second to billions of years, which
makes radioactive isotopes useful for dating rocks and ancient remains.

The water cycle describes the continuous movement of water on, above and below the surface of the Earth. Heat from
the Sun evaporates water from oceans, lakes and plants, and the vapour rises, cools and condenses into clouds. Water
returns to the ground as rain or snow, then flows into rivers, soaks into the soil or is stored in ice. Eventually
most of it makes its way back to the sea.

The greenhouse effect is the warming of a planet's surface by gases in its atmosphere that absorb heat radiation.
Sunlight passes through the air and warms the ground, which then gives off infrared radiation. Gases such as water
vapour, carbon dioxide and methane absorb some of this radiation and send part of it back down. Without any
greenhouse effect the Earth would be far too cold for most life, but rising levels of these gases are warming the
climate.

The ozone layer is a region of the stratosphere, roughly 15 to 35 kilometres above the ground, with a relatively
high concentration of ozone. It absorbs most of the Sun's harmful ultraviolet radiation. In the 1980s scientists
discovered that chemicals called chlorofluorocarbons were thinning the layer, especially over Antarctica. The
Montreal Protocol of 1987 phased out these chemicals, and the layer is slowly recovering.

Cell theory states that all living things are made of cells, that the cell is the basic unit of life, and that new
cells arise only from existing cells. It was developed in the nineteenth century by Matthias Schleiden, Theodor
Schwann and Rudolf Virchow. Some organisms, such as bacteria, consist of a single cell. The human body contains tens
of trillions of cells of many different types.

Mitochondria are small structures inside most plant and animal cells that produce much of the cell's energy. They
break down sugars and fats using oxygen and store the released energy in a molecule called ATP. Mitochondria have
their own small loop of DNA, a clue that they descend from bacteria that began living inside other cells long ago.
In humans, mitochondrial DNA is inherited from the mother.

Enzymes are proteins that speed up chemical reactions in living things without being used up. Each enzyme has an
active site whose shape fits particular molecules, much as a key fits a lock. Digestive enzymes break food down into
smaller molecules that the body can absorb. Most enzymes work best within a narrow range of temperature and acidity.

The immune system defends the body against bacteria, viruses and other invaders. White blood cells recognise foreign
substances and either destroy them directly or produce antibodies that mark them for destruction. After an
infection, memory cells remain that allow a faster response to the same germ in the future. Vaccines work by
training this memory without causing the disease itself.

The Doppler effect is the change in frequency of a wave when its source and observer are moving relative to each
other. The siren of an approaching ambulance sounds higher in pitch than the same siren moving away. Light shows the
same effect: light from galaxies moving away from us is shifted towards the red end of the spectrum. Astronomers use
this redshift to measure how fast distant galaxies are receding.

Sound is a wave of pressure that travels through a medium such as air, water or solid rock. In dry air at 20 degrees
Celsius it travels at about 343 metres per second, roughly a kilometre every three seconds. Sound moves faster in
water and faster still in steel. It cannot travel through a vacuum, so space is silent.

A rainbow appears when sunlight is refracted, reflected and dispersed inside raindrops. Each colour of light bends
by a slightly different amount, so white light is spread into a band of colours from red to violet. A rainbow is
always seen in the part of the sky opposite the Sun. Sometimes a fainter secondary rainbow appears outside the
first, with its colours in reverse order.

A prime number is a whole number greater than one that has no divisors other than one and itself. The first few
primes are 2, 3, 5, 7, 11 and 13. Around 300 BC Euclid proved that there are infinitely many primes. Large primes
are essential to modern cryptography, which protects online payments and messages.

The Pythagorean theorem states that in a right-angled triangle the square of the longest side equals the sum of the
squares of the other two sides. A triangle with sides of 3, 4 and 5 units is the best-known example. The result is
named after the Greek philosopher Pythagoras, although it was known earlier in Babylon. It is used constantly in
surveying, navigation and computer graphics.

Pi is the ratio of a circle's circumference to its diameter and is approximately 3.14159. It is an irrational
number, so its decimal digits never end and never settle into a repeating pattern. Archimedes estimated pi by
drawing polygons inside and outside a circle. Today computers have calculated trillions of its digits.

The Fibonacci sequence begins 0, 1, 1, 2, 3, 5, 8, 13, and each number after the first two is the sum of the two
before it. It is named after Leonardo of Pisa, known as Fibonacci, who described it in his book Liber Abaci in 1202.
The ratio of successive numbers approaches the golden ratio, about 1.618. Fibonacci numbers appear in the
arrangement of leaves, seeds and petals in many plants.

The metric system was introduced in France in the 1790s to replace a confusing variety of local units. It is based
on powers of ten, so converting between units only requires moving the decimal point. Its modern form, the
International System of Units, has seven base units, including the metre, the kilogram and the second. Almost every
country now uses it for most purposes.

The seasons are caused by the tilt of the Earth's axis, about 23.4 degrees, relative to its orbit around the Sun.
When the Northern Hemisphere leans towards the Sun, it receives more direct sunlight and longer days, and it has
summer. Six months later the situation is reversed. The seasons are not caused by changes in the Earth's distance
from the Sun, which is actually smallest in early January.

Tides are the regular rise and fall of sea level, caused mainly by the gravitational pull of the Moon and, to a
lesser extent, the Sun. Most coasts have two high tides and two low tides roughly every day. The highest tides,
called spring tides, occur when the Sun, Moon and Earth are lined up at new and full moon. The Bay of Fundy in
Canada has some of the largest tidal ranges in the world.

A volcano is an opening in the Earth's crust through which molten rock, gas and ash escape. Most volcanoes form
where tectonic plates pull apart or where one plate sinks beneath another, but some, such as those of Hawaii, lie
above hot spots in the mantle. Eruptions can be gentle flows of lava or violent explosions. Volcanic soils are often
very fertile, which draws farmers to live near volcanoes despite the danger.

An earthquake is a sudden shaking of the ground caused by the release of energy when rocks slip along a fault. The
point underground where the slip begins is called the focus, and the point on the surface above it is the epicentre.
Seismologists measure the size of earthquakes on the moment magnitude scale, on which each whole number step
represents about 32 times more energy. Earthquakes under the sea can set off tsunamis.
"""

ANIMALS = """
The blue whale is the largest animal known to have ever lived, reaching lengths of around 30 metres. Despite its
size it feeds almost entirely on krill, tiny shrimp-like animals that it filters from the water through plates of
baleen. A single adult can eat several tonnes of krill a day during the feeding season. Its low-frequency calls can
travel hundreds of kilometres through the ocean.

The African elephant is the largest living land animal. Its trunk, a fusion of the nose and upper lip, is used for
breathing, smelling, drinking and grasping objects. Elephants live in close family groups led by an older female,
the matriarch, who remembers the locations of water and food. They communicate with low rumbles that can be sensed
over long distances.

The giraffe is the tallest living animal, with adult males reaching more than five metres. Its long neck contains
just seven vertebrae, the same number as in most mammals, but each one is greatly elongated. Giraffes browse on the
leaves of tall trees, especially acacias, using a long dark tongue. Each giraffe has a unique pattern of patches on
its coat.

The cheetah is the fastest land animal and can sprint at around 100 kilometres per hour in short bursts. Its light
body, long legs, flexible spine and large nostrils are all adaptations for speed. Cheetahs hunt mostly by day,
relying on sight to spot prey such as gazelles. After a chase they often need to rest before eating, and larger
predators sometimes steal their kills.

The peregrine falcon is the fastest animal on Earth when diving. As it swoops down on prey in a steep dive called a
stoop, it can exceed 300 kilometres per hour. Peregrines live on every continent except Antarctica and often nest on
tall city buildings. Their numbers fell sharply in the twentieth century because of the pesticide DDT but recovered
after it was banned.

The emperor penguin is the largest of all penguins and breeds during the Antarctic winter. After the female lays a
single egg, the male balances it on his feet under a fold of skin and keeps it warm for about two months without
eating. The males huddle together in large groups to survive temperatures far below freezing and fierce winds. The
female returns from the sea to feed the chick once it hatches.

Honeybees live in colonies that can contain tens of thousands of workers, a single queen and, in summer, a number of
males called drones. Workers that find a good source of nectar tell their nestmates where it is with a waggle dance.
The angle of the dance shows the direction of the food relative to the Sun, and its duration indicates the distance.
Karl von Frisch received a Nobel Prize in 1973 for decoding this language.

The octopus is a soft-bodied marine animal with eight arms lined with suckers. It has three hearts and blue blood,
which carries oxygen using a copper-based protein. Octopuses can change the colour and texture of their skin in a
fraction of a second to hide or signal. They are known for their intelligence and have been seen solving puzzles and
escaping from tanks.

The monarch butterfly is famous for its long migration across North America. Every autumn millions of monarchs fly
south, some travelling thousands of kilometres to spend the winter in the mountain forests of central Mexico. No
single butterfly makes the whole round trip; the return journey north takes several generations. Their caterpillars
feed only on milkweed, which makes them distasteful to predators.

The Arctic tern makes the longest known migration of any animal. It breeds in the Arctic in the northern summer and
then flies to the Antarctic for the southern summer, so it sees more daylight than any other creature. Tracking
studies have shown that some birds fly more than 70,000 kilometres in a year. Over its lifetime a tern may fly a
distance equivalent to several trips to the Moon and back.

The giant panda lives in the mountain forests of central China. Although it belongs to the order of carnivores,
bamboo makes up almost all of its diet, and an adult may spend more than ten hours a day eating. An enlarged wrist
bone works like a thumb to help it grip bamboo stems. Conservation efforts have helped its wild population to grow
in recent decades.

The red kangaroo is the largest living marsupial and is found across the dry interior of Australia. Kangaroos move
by hopping on their powerful hind legs, using their long tails for balance. Like other marsupials, a female raises
her young, called a joey, in a pouch. A newborn joey is tiny and crawls into the pouch, where it continues to
develop for several months.

The platypus is one of the few mammals that lay eggs. It lives in the rivers and streams of eastern Australia and
has a flat, duck-like bill, webbed feet and a beaver-like tail. When it dives it closes its eyes and ears and finds
prey by sensing the weak electric fields produced by their muscles. Male platypuses have a venomous spur on each
hind leg.

The Komodo dragon is the largest living lizard and can grow to about three metres long. It is found only on a few
islands of Indonesia, including Komodo. Komodo dragons hunt deer and pigs by ambush, and their bite delivers venom
that prevents blood from clotting. Females are able to produce offspring without mating, although this is rare.

The axolotl is a salamander native to the lakes around Mexico City. Unlike most amphibians, it usually keeps its
larval features, such as feathery external gills, throughout its adult life. Axolotls can regrow lost limbs, parts
of the heart and even parts of the brain. They are now critically endangered in the wild but common in laboratories
and aquariums.

Tardigrades, sometimes called water bears, are microscopic animals with eight stubby legs. They live in moss, soil,
fresh water and the sea all over the world. In dry conditions they can enter a state called a tun, in which their
metabolism nearly stops. In this state they have survived extreme cold, high doses of radiation and even exposure to
the vacuum of space.

Salmon are born in freshwater streams, migrate to the ocean to grow, and return to their home rivers to spawn. They
find their way back over long distances partly by using the Earth's magnetic field and partly by the smell of their
native stream. On the way upstream they leap up waterfalls and swim against strong currents. Many species of Pacific
salmon die soon after spawning.

Bats are the only mammals capable of true flight. Their wings are made of thin skin stretched between elongated
finger bones. Many bats find their way and catch insects in the dark by echolocation, sending out high-pitched calls
and listening for the echoes. Others, such as fruit bats, rely mainly on sight and smell and play an important role
in pollinating plants and spreading seeds.

Dolphins are highly social marine mammals that live in groups called pods. They breathe air through a blowhole on
top of their heads and use echolocation to find fish. Each bottlenose dolphin develops its own signature whistle,
which other dolphins use to identify it. Dolphins have been seen using sea sponges to protect their snouts while
foraging on the sea floor.

Chimpanzees are among the closest living relatives of humans and live in the forests and savannas of central and
western Africa. In 1960 Jane Goodall observed chimpanzees in Tanzania stripping twigs and using them to fish
termites out of their mounds. This discovery showed that humans are not the only animals that make tools.
Chimpanzees live in communities with complex social relationships.

Ants are social insects that live in colonies ranging from a few dozen to millions of individuals. They communicate
mainly with chemical signals called pheromones, for example laying scent trails that lead nestmates to food.
Leafcutter ants grow fungus gardens on pieces of leaves that they carry back to the nest. Some army ants have no
permanent nest and move in vast raiding columns.

Coral reefs are built by colonies of tiny animals called polyps, which produce skeletons of calcium carbonate. Most
reef-building corals contain microscopic algae that live inside their tissues and supply them with food made by
photosynthesis. Reefs cover a small fraction of the ocean floor but shelter about a quarter of all marine species.
When water becomes too warm, corals expel their algae and turn white, an event known as bleaching.

Sea otters live along the coasts of the northern Pacific Ocean. Unlike most marine mammals they have no layer of
blubber and instead stay warm with extremely dense fur. They float on their backs and use stones as tools to crack
open shellfish on their chests. By eating sea urchins, sea otters help protect kelp forests from being overgrazed.

Hummingbirds are small birds of the Americas that can hover in place and even fly backwards. Their wings beat dozens
of times per second, producing the humming sound that gives them their name. To fuel this activity they feed on
flower nectar and have some of the highest metabolic rates of any animal. The bee hummingbird of Cuba is the
smallest bird in the world.

Owls are mostly nocturnal birds of prey with large forward-facing eyes and excellent hearing. In many species the
ear openings are placed at different heights on the head, which helps them pinpoint sounds in the dark. Soft,
fringed feathers allow them to fly almost silently. Owls swallow small prey whole and later cough up pellets of fur
and bone.

Camels are well adapted to life in hot deserts. Their humps store fat rather than water, and the fat can be broken
down for energy when food is scarce. Camels can go for long periods without drinking and then take in a large amount
of water very quickly. Long eyelashes, closable nostrils and broad feet help them cope with sand and wind.

The polar bear lives on the sea ice of the Arctic and hunts mainly seals. Its fur looks white, but the individual
hairs are transparent, and the skin underneath is black. A thick layer of fat and dense fur keep it warm in freezing
water and air. Because it depends on sea ice for hunting, the loss of ice in a warming Arctic threatens its future.

Chameleons are lizards known for their ability to change colour, which they use mainly for communication and
temperature control rather than camouflage. Their eyes can move independently, letting them look in two directions
at once. They catch insects with a long, sticky tongue that shoots out at great speed. Most species live in Africa
and Madagascar.

The electric eel of South America is not a true eel but a kind of knifefish. It has organs made of thousands of
specialised cells that together can produce shocks of several hundred volts. It uses weaker electric pulses to sense
its surroundings in murky water and stronger ones to stun prey. Electric eels breathe air and must regularly come to
the surface.

The snow leopard lives in the high mountains of Central and South Asia. Its thick, smoky-grey fur and very long tail
help it survive the cold, and it wraps the tail around itself while resting. Wide, furry paws act like snowshoes on
soft snow. Snow leopards are so elusive that they are rarely seen even by people who live in their range.
"""

CULTURE = """
Chess is a strategy game for two players on a board of 64 squares. It developed from an Indian game that spread to
Persia and then to Europe, where its modern rules were settled around the end of the fifteenth century. Each player
controls sixteen pieces and tries to checkmate the opponent's king. In 1997 the computer Deep Blue defeated the
reigning world champion Garry Kasparov in a match.

Association football, known as soccer in some countries, is the most popular sport in the world. Two teams of eleven
players try to move a ball into the opposing goal without using their hands or arms, except for the goalkeepers. The
modern rules were codified in England in 1863. The FIFA World Cup, first held in 1930, is watched by billions of
people.

The modern Olympic Games were revived by Pierre de Coubertin, and the first were held in Athens in 1896. They were
inspired by the ancient games held at Olympia in Greece for more than a thousand years. The Winter Olympics began in
1924. Today athletes from more than two hundred nations compete in dozens of sports.

The piano was invented around 1700 by Bartolomeo Cristofori in Florence. Unlike the harpsichord, whose strings are
plucked, the piano strikes its strings with felt-covered hammers, so the player can vary the loudness. Its full
name, pianoforte, means soft-loud in Italian. A standard modern piano has 88 keys.

The violin is the smallest and highest-pitched member of the string family. Its four strings are usually played with
a bow strung with horsehair. The instrument took its modern form in northern Italy in the sixteenth century, and the
workshops of Cremona, including that of Antonio Stradivari, produced some of the finest violins ever made. Violins
are central to the orchestra and to many folk traditions.

Tea is made by steeping the processed leaves of the tea plant in hot water. It originated in south-western China,
where it was drunk as a medicine before becoming an everyday drink. Green, oolong and black teas all come from the
same plant and differ in how the leaves are processed. After water, tea is one of the most widely consumed drinks in
the world.

Coffee is brewed from the roasted seeds of the coffee plant, which is native to the highlands of Ethiopia. Coffee
drinking spread through Yemen and the Arab world in the fifteenth century and reached Europe in the seventeenth
century, where coffee houses became centres of conversation and business. The two main commercial species are
arabica and robusta. Brazil is the largest producer of coffee in the world.

Chocolate is made from the seeds of the cacao tree, which grows in tropical regions. The peoples of Mesoamerica,
including the Maya and the Aztecs, prepared a bitter drink from cacao long before Europeans arrived. After the beans
reached Spain in the sixteenth century, sugar was added and the drink became fashionable in Europe. Solid chocolate
bars became common in the nineteenth century.

Rice is the staple food for more than half of the world's population. It was domesticated in Asia thousands of years
ago, and most of the world's rice is still grown and eaten there. Many varieties are grown in flooded fields called
paddies, which suppress weeds. Rice plants need a lot of water and warm temperatures.

Bread is one of the oldest prepared foods. Flat breads were made thousands of years before the first farmers, and
leavened bread, which rises because yeast produces bubbles of carbon dioxide, was known in ancient Egypt. Wheat
flour contains gluten, a protein network that traps the gas and gives bread its structure. Around the world bread
takes countless forms, from flat tortillas to tall loaves.

The Silk Road was a network of trade routes that connected China with Central Asia, the Middle East and the
Mediterranean. It takes its name from the Chinese silk that was one of its most valuable goods, but spices, glass,
paper and horses also travelled along it. Ideas, religions and technologies spread along the routes as well. Caravan
cities such as Samarkand grew rich from the trade.

The Great Wall of China is a series of fortifications built over many centuries along the northern borders of
Chinese states. Early walls were made of rammed earth, while the best-known sections, built under the Ming dynasty,
are of brick and stone. Including all its branches, the wall stretches for many thousands of kilometres. Contrary to
a popular myth, it is not visible to the naked eye from the Moon.

The Great Pyramid of Giza was built as a tomb for the pharaoh Khufu about 4,500 years ago. It was the tallest
human-made structure in the world for more than three thousand years. The pyramid was built from millions of stone
blocks, some weighing several tonnes. It is the oldest of the Seven Wonders of the Ancient World and the only one
still standing.

Stonehenge is a prehistoric monument on Salisbury Plain in southern England. Its best-known feature is a ring of
large standing stones topped by horizontal lintels, raised around 2500 BC. Some of the smaller bluestones were
brought from the Preseli Hills in Wales, more than 200 kilometres away. The monument is aligned with the sunrise at
the summer solstice.

The Library of Alexandria was one of the largest and most important libraries of the ancient world. It was founded
in Egypt in the third century BC under the Ptolemaic kings and collected scrolls from across the Mediterranean
world. Scholars working there made advances in mathematics, astronomy and literature. The library declined gradually
over several centuries rather than being destroyed in a single fire.

The Rosetta Stone is a slab of stone inscribed in 196 BC with the same decree in three scripts: hieroglyphic,
Demotic and ancient Greek. It was found in 1799 near the town of Rashid, known in English as Rosetta, in the Nile
delta. Because scholars could read the Greek text, the stone provided a key to Egyptian hieroglyphs. Jean-François
Champollion announced his decipherment in 1822.

The Renaissance was a period of European cultural history, beginning in Italy in the fourteenth century, marked by
renewed interest in the art and learning of ancient Greece and Rome. Artists such as Leonardo da Vinci, Michelangelo
and Raphael developed realistic perspective and anatomy. Humanist scholars studied classical texts and emphasised
human potential. The spread of printing helped carry Renaissance ideas across Europe.

The Industrial Revolution began in Britain in the second half of the eighteenth century and spread to Europe and
North America. Machines powered by water and steam took over work once done by hand, first in textiles and then in
iron making and transport. Factories drew people from the countryside into rapidly growing cities. The changes
raised productivity enormously but also brought harsh working conditions and pollution.

Magna Carta is a charter of rights agreed by King John of England in 1215 under pressure from rebellious barons. It
established the principle that the king was subject to the law, and it promised protection from illegal
imprisonment. Many of its clauses dealt with feudal matters of the time. Later generations saw it as a foundation of
constitutional government and the rule of law.

Origami is the art of folding paper into shapes without cutting or gluing it. It is most closely associated with
Japan, where folded paper has long been used in ceremonies. The crane is one of its best-known designs.
Mathematicians and engineers study the principles of folding to design things such as solar panels that unfold in
space.
"""


# --------------------------------------------------------------------------------------------------------------------
# task tables shared by the instruction, ranking and conversation sets
# --------------------------------------------------------------------------------------------------------------------

# English name | capital | Chinese name | Chinese capital | a city that is often mistaken for the capital ("-" if none)
CAPITALS = """
France | Paris | 法国 | 巴黎 | Lyon
Germany | Berlin | 德国 | 柏林 | Munich
Italy | Rome | 意大利 | 罗马 | Milan
Spain | Madrid | 西班牙 | 马德里 | Barcelona
Portugal | Lisbon | 葡萄牙 | 里斯本 | Porto
the United Kingdom | London | 英国 | 伦敦 | Manchester
Ireland | Dublin | 爱尔兰 | 都柏林 | Cork
the Netherlands | Amsterdam | 荷兰 | 阿姆斯特丹 | Rotterdam
Belgium | Brussels | 比利时 | 布鲁塞尔 | Antwerp
Austria | Vienna | 奥地利 | 维也纳 | Salzburg
Hungary | Budapest | 匈牙利 | 布达佩斯 | -
the Czech Republic | Prague | 捷克 | 布拉格 | -
Poland | Warsaw | 波兰 | 华沙 | Kraków
Denmark | Copenhagen | 丹麦 | 哥本哈根 | -
Norway | Oslo | 挪威 | 奥斯陆 | Bergen
Sweden | Stockholm | 瑞典 | 斯德哥尔摩 | Gothenburg
Finland | Helsinki | 芬兰 | 赫尔辛基 | -
Iceland | Reykjavík | 冰岛 | 雷克雅未克 | -
Greece | Athens | 希腊 | 雅典 | Thessaloniki
Russia | Moscow | 俄罗斯 | 莫斯科 | Saint Petersburg
Turkey | Ankara | 土耳其 | 安卡拉 | Istanbul
Egypt | Cairo | 埃及 | 开罗 | Alexandria
Kenya | Nairobi | 肯尼亚 | 内罗毕 | Mombasa
Nigeria | Abuja | 尼日利亚 | 阿布贾 | Lagos
Ghana | Accra | 加纳 | 阿克拉 | -
Ethiopia | Addis Ababa | 埃塞俄比亚 | 亚的斯亚贝巴 | -
Morocco | Rabat | 摩洛哥 | 拉巴特 | Casablanca
Japan | Tokyo | 日本 | 东京 | Osaka
China | Beijing | 中国 | 北京 | Shanghai
South Korea | Seoul | 韩国 | 首尔 | Busan
Mongolia | Ulaanbaatar | 蒙古 | 乌兰巴托 | -
India | New Delhi | 印度 | 新德里 | Mumbai
Pakistan | Islamabad | 巴基斯坦 | 伊斯兰堡 | Karachi
Nepal | Kathmandu | 尼泊尔 | 加德满都 | -
Thailand | Bangkok | 泰国 | 曼谷 | -
Vietnam | Hanoi | 越南 | 河内 | Ho Chi Minh City
the Philippines | Manila | 菲律宾 | 马尼拉 | -
Malaysia | Kuala Lumpur | 马来西亚 | 吉隆坡 | -
Saudi Arabia | Riyadh | 沙特阿拉伯 | 利雅得 | Jeddah
Iran | Tehran | 伊朗 | 德黑兰 | -
Australia | Canberra | 澳大利亚 | 堪培拉 | Sydney
New Zealand | Wellington | 新西兰 | 惠灵顿 | Auckland
Canada | Ottawa | 加拿大 | 渥太华 | Toronto
the United States | Washington, D.C. | 美国 | 华盛顿 | New York City
Mexico | Mexico City | 墨西哥 | 墨西哥城 | -
Cuba | Havana | 古巴 | 哈瓦那 | -
Brazil | Brasília | 巴西 | 巴西利亚 | Rio de Janeiro
Argentina | Buenos Aires | 阿根廷 | 布宜诺斯艾利斯 | -
Chile | Santiago | 智利 | 圣地亚哥 | -
Peru | Lima | 秘鲁 | 利马 | -
Colombia | Bogotá | 哥伦比亚 | 波哥大 | Medellín
"""

ANTONYMS_EN = """
hot cold, early late, happy sad, fast slow, full empty, strong weak, rich poor, young old, begin end, buy sell,
win lose, push pull, accept reject, ancient modern, arrive depart, brave cowardly, cheap expensive, clean dirty,
deep shallow, difficult easy, dry wet, entrance exit, failure success, friend enemy, generous stingy,
guilty innocent, heavy light, increase decrease, inside outside, loud quiet, maximum minimum, narrow wide,
polite rude, remember forget, safe dangerous, smooth rough, thick thin, true false, victory defeat,
visible invisible, above below, ascend descend, import export, majority minority, optimistic pessimistic,
permanent temporary, question answer, vertical horizontal, wild tame
"""

ANTONYMS_ZH = """
高 低，大 小，长 短，快 慢，多 少，冷 热，黑 白，上 下，左 右，前 后，开 关，买 卖，美丽 丑陋，干净 肮脏，
安全 危险，简单 复杂，光明 黑暗，勇敢 胆怯，热闹 冷清，真 假，新 旧，深 浅，厚 薄，宽 窄，轻 重，早 晚，
远 近，软 硬，甜 苦，强 弱，富有 贫穷，增加 减少，出发 到达，开始 结束，成功 失败，赞成 反对，聪明 愚蠢，
积极 消极，快乐 悲伤，整齐 杂乱，陌生 熟悉，进口 出口，上升 下降，忙碌 清闲，粗心 细心，主动 被动，谦虚 骄傲，
湿润 干燥
"""

REVERSE_WORDS_EN = """
planet garden window orange pencil silver market doctor rocket castle bridge winter yellow forest butter camera
island guitar jacket ladder mirror number pepper summer tunnel library mountain keyboard elephant umbrella
"""

REVERSE_WORDS_ZH = """
春夏秋冬 东南西北 山清水秀 风和日丽 人工智能 学习进步 天气晴朗 图书馆 计算机 自行车 大熊猫 长江黄河 花好月圆
一心一意 万事如意 高山流水 鸟语花香 日新月异 火车站 电视机 飞机场 太阳系 数据集 机器学习 自然语言
"""

# label | review
SENTIMENT_EN = """
Positive | The battery lasts all day and the screen is bright and sharp.
Positive | I was greeted warmly and my food arrived hot and quickly.
Positive | This novel kept me turning pages until two in the morning.
Positive | The hotel room was spotless and the staff went out of their way to help.
Positive | Setup took five minutes and the speakers sound fantastic.
Positive | My kids loved the museum and we are already planning another visit.
Positive | The jacket fits perfectly and keeps me warm on the coldest mornings.
Positive | Customer support solved my problem in a single short call.
Positive | The concert was unforgettable and the band played every song I hoped for.
Positive | These running shoes are light, comfortable and worth every penny.
Positive | The recipe was easy to follow and the cake turned out delicious.
Positive | Our tour guide was funny, knowledgeable and very patient.
Positive | The app is fast, simple and has made budgeting painless for me.
Positive | Delivery arrived a day early and everything was well packed.
Positive | The garden café is a peaceful spot with excellent coffee.
Negative | The blender stopped working after two weeks.
Negative | We waited an hour for cold food and nobody apologised.
Negative | The plot was predictable and the ending made no sense.
Negative | The room smelled of smoke and the shower never got warm.
Negative | The headphones crackle constantly and the left side keeps cutting out.
Negative | The package arrived late and the vase inside was broken.
Negative | The app crashes every time I try to upload a photo.
Negative | The seats were cramped and the film was impossible to hear.
Negative | The charger got dangerously hot and then stopped charging.
Negative | I was put on hold for forty minutes and then disconnected.
Negative | The shirt shrank badly after the first wash.
Negative | The instructions were confusing and two screws were missing.
Negative | The tour was rushed and we barely saw anything.
Negative | This vacuum cleaner is loud and hardly picks up any dust.
Negative | The software update deleted my saved settings without warning.
"""

SENTIMENT_ZH = """
正面 | 这款手机电池很耐用，屏幕也非常清晰。
正面 | 服务员态度热情，上菜速度也很快。
正面 | 这本小说情节紧凑，我一口气就读完了。
正面 | 酒店房间干净整洁，前台工作人员非常耐心。
正面 | 耳机音质出色，佩戴起来也很舒服。
正面 | 快递提前一天送到，包装得非常仔细。
正面 | 这家咖啡馆环境安静，咖啡味道很好。
正面 | 老师讲解清楚，我终于弄懂了这道题。
正面 | 这双跑鞋轻便舒适，性价比很高。
正面 | 电影画面精美，音乐也很动人。
正面 | 客服很快就帮我解决了问题。
正面 | 这个软件简单好用，大大提高了我的效率。
正面 | 导游知识丰富，讲解生动有趣。
正面 | 蛋糕甜而不腻，孩子们都很喜欢。
正面 | 新买的台灯光线柔和，晚上看书眼睛不累。
负面 | 用了不到一周，吹风机就坏了。
负面 | 等了一个小时才上菜，而且菜都是凉的。
负面 | 剧情拖沓，结局也莫名其妙。
负面 | 房间有一股霉味，热水也时有时无。
负面 | 耳机经常断连，左耳还有杂音。
负面 | 快递晚到了三天，里面的杯子也碎了。
负面 | 这个应用一上传照片就闪退。
负面 | 衣服洗了一次就严重缩水。
负面 | 说明书写得很乱，还少了两颗螺丝。
负面 | 客服让我等了四十分钟，最后还挂断了电话。
负面 | 充电器发烫得厉害，后来直接不能用了。
负面 | 座位又窄又挤，音响效果也很差。
负面 | 吸尘器噪音很大，却几乎吸不起灰尘。
负面 | 软件更新后，我保存的设置全都不见了。
负面 | 行程安排太赶，景点几乎都没看成。
"""

# passage | one-sentence summary
SUMMARIES_EN = """
After three years of planning and two delays caused by bad weather, the town finally opened its new public library
on Saturday, and hundreds of residents came to borrow books on the first day. | The town's long-delayed new library
opened on Saturday and drew hundreds of visitors.

Researchers who followed two thousand adults for ten years found that those who walked for at least thirty minutes a
day were less likely to develop heart disease than those who rarely exercised. | A ten-year study found that daily
walking is linked to a lower risk of heart disease.

Because the main bridge is being repaired, buses on routes 4 and 9 will use a detour through the industrial district
until the end of March, adding about ten minutes to each journey. | Buses 4 and 9 will take a longer detour until
the end of March while the main bridge is repaired.

The company reported that sales of its electric bicycles doubled last year, driven mainly by commuters in large
cities who wanted an alternative to crowded trains. | The company's electric bicycle sales doubled last year thanks
to city commuters.

Heavy rain overnight caused the river to burst its banks, flooding several streets in the old town and forcing the
closure of two schools, although no injuries were reported. | Overnight flooding closed streets and two schools in
the old town, but nobody was hurt.

The museum's new exhibition brings together more than two hundred objects from ancient Egypt, many of which have
never been shown to the public before, and it will run until September. | A new museum exhibition shows over two
hundred ancient Egyptian objects until September.

Volunteers spent the weekend collecting rubbish along the beach and removed nearly a tonne of plastic, most of it
bottles, bags and fishing nets washed up by recent storms. | Volunteers removed almost a tonne of plastic from the
beach over the weekend.

The school has decided to start lessons thirty minutes later next year after a trial showed that students who slept
longer paid more attention in class and were late less often. | The school will start later next year after a trial
showed that more sleep helped students.

Although the film received mixed reviews from critics, it became the most watched release of the summer, largely
because of strong word of mouth among younger audiences. | Despite mixed reviews, the film was the summer's most
watched release.

The city council approved a plan to plant five thousand trees over the next four years in neighbourhoods that
currently have the least shade and green space. | The council will plant five thousand trees in the city's least
green neighbourhoods over four years.

Engineers tested the new train at speeds of up to 320 kilometres per hour last month, and passenger services on the
line are expected to begin early next year if safety checks are passed. | The new high-speed train passed speed
tests and could carry passengers from early next year.

The bakery on the corner, which has been run by the same family for over sixty years, will close at the end of the
month because the owners are retiring and no one wants to take it over. | A family bakery open for over sixty years
will close this month as its owners retire.

Farmers in the region say that the unusually dry spring has reduced their wheat harvest by about a third, and they
are asking the government for financial support. | A dry spring cut the region's wheat harvest by a third, and
farmers want government help.

The software update, released on Tuesday, fixes a security flaw that could have allowed attackers to read private
messages, and users are advised to install it as soon as possible. | Tuesday's update fixes a serious security flaw
and should be installed promptly.

During the power cut, which lasted almost six hours, hospitals switched to backup generators and traffic police were
sent to busy crossroads where the lights had stopped working. | Hospitals used generators and police directed
traffic during a six-hour power cut.

The team won the championship for the first time in its history after scoring a late goal in the final against last
year's winners. | A late goal in the final gave the team its first ever championship.

Scientists have discovered a new species of frog in the mountain forests of the region, and they believe it may
already be endangered because its habitat is very small. | Scientists found a new frog species that may already be
endangered.

Starting next month, shoppers will have to pay a small fee for plastic bags at all supermarkets in the country, a
measure intended to reduce litter and encourage reusable bags. | Supermarkets will start charging for plastic bags
next month to cut litter.

The marathon attracted a record twelve thousand runners this year, and the winner of the men's race finished just
two seconds ahead of the runner-up after a sprint along the final straight. | A record field ran this year's
marathon, and the men's race was won by two seconds.

Local residents have complained that the new airport flight path sends planes low over their homes late at night,
and the airport has promised to review the route. | The airport will review a new flight path after residents
complained about night noise.
"""

SUMMARIES_ZH = """
经过三年的筹备和两次因天气原因的延期，镇上的新图书馆终于在周六正式开放，第一天就有数百名居民前来借书。
| 镇上筹备多年的新图书馆周六开放，首日吸引了数百名居民。

研究人员对两千名成年人进行了十年的跟踪调查，发现每天步行至少三十分钟的人患心脏病的风险明显低于很少运动的人。
| 一项十年研究发现，每天步行有助于降低心脏病风险。

由于主桥正在维修，4路和9路公交车在三月底之前将绕行工业区，每趟车程大约增加十分钟。
| 主桥维修期间，4路和9路公交车将绕行至三月底。

昨夜暴雨导致河水漫过堤岸，老城区多条街道被淹，两所学校被迫停课，所幸没有人员受伤。
| 昨夜暴雨使老城区街道被淹、两所学校停课，但无人受伤。

志愿者们利用周末在海滩上清理垃圾，共清走了将近一吨塑料，其中大部分是被风暴冲上岸的瓶子、袋子和渔网。
| 志愿者周末从海滩清理出近一吨塑料垃圾。

学校决定明年起推迟三十分钟上课，因为试点发现睡眠更充足的学生上课更专心，迟到也更少。
| 试点显示睡眠充足有益学习，学校明年将推迟上课时间。

尽管这部电影的评价褒贬不一，但凭借年轻观众的口碑传播，它仍成为今年暑期观看人数最多的影片。
| 这部电影虽然评价不一，却成为暑期观看人数最多的影片。

市政府批准了一项计划，将在未来四年内在绿化最少的社区种植五千棵树。
| 市政府计划四年内在绿化不足的社区种植五千棵树。

街角那家由同一家人经营了六十多年的面包店，因店主退休且无人接手，将在月底关门。
| 一家经营六十多年的面包店将因店主退休在月底关门。

当地农民表示，今年春季异常干旱，小麦减产约三分之一，他们希望政府提供资金支持。
| 春季干旱使小麦减产三分之一，农民希望获得政府支持。

周二发布的软件更新修复了一个可能让攻击者读取私人消息的安全漏洞，建议用户尽快安装。
| 周二的更新修复了一个严重安全漏洞，用户应尽快安装。

这支球队在决赛最后时刻攻入制胜一球，击败上届冠军，首次夺得联赛冠军。
| 这支球队凭借决赛绝杀首次夺冠。

科学家在该地区的山地森林中发现了一种新的蛙类，由于其栖息地面积很小，它可能已经处于濒危状态。
| 科学家发现了一种可能已经濒危的新蛙种。

从下个月起，全国所有超市的塑料袋都将收取少量费用，此举旨在减少垃圾并鼓励人们使用可重复使用的购物袋。
| 超市下月起对塑料袋收费，以减少垃圾。

停电持续了将近六个小时，期间医院启用了备用发电机，交警也被派往信号灯失灵的繁忙路口指挥交通。
| 六小时停电期间，医院启用备用电源，交警到路口疏导交通。

今年的马拉松吸引了创纪录的一万两千名选手参加，男子组冠军在最后冲刺中仅领先亚军两秒。
| 今年马拉松参赛人数创纪录，男子组冠军仅以两秒优势获胜。

公司公布的数据显示，去年电动自行车销量翻了一番，主要是因为大城市的通勤者希望避开拥挤的地铁。
| 受城市通勤需求推动，公司去年电动自行车销量翻番。

博物馆的新展览汇集了两百多件古埃及文物，其中许多是首次公开展出，展览将持续到九月。
| 博物馆新展出两百多件古埃及文物，展期至九月。

附近居民投诉新的航线让飞机在深夜低空飞过住宅区，机场已承诺重新评估这条航线。
| 居民投诉夜间飞机噪音后，机场承诺重新评估新航线。

工程师上个月对新列车进行了时速三百二十公里的测试，如果安全检查通过，这条线路有望明年初开通载客。
| 新列车已完成高速测试，有望明年初载客运营。
"""

# informal | formal
FORMAL_EN = """
Hey, can you send me that report ASAP? | Could you please send me the report at your earliest convenience?
Sorry, I can't make it to the meeting tomorrow. | I regret that I will be unable to attend tomorrow's meeting.
Thanks a lot for helping out with the move! | Thank you very much for your assistance with the move.
The new guy messed up the numbers again. | The new employee has once again made errors in the figures.
We need to talk about your late payments. | We would like to discuss the matter of your overdue payments.
Just checking if you got my last email. | I am writing to confirm whether you received my previous email.
This plan is way too expensive. | This plan is considerably more expensive than we can justify.
Can you fix my laptop? It keeps dying. | Would you be able to repair my laptop? It shuts down repeatedly.
Let me know what you think. | I would welcome your feedback.
The meeting got moved to Friday. | The meeting has been rescheduled to Friday.
I'm gonna be a bit late. | I will arrive slightly later than planned.
Your order's on its way. | Your order has been dispatched.
We can't give you a refund, sorry. | Unfortunately, we are unable to offer you a refund.
Tell me if you need anything else. | Please do not hesitate to contact me if you require any further assistance.
The kids made a huge mess in the classroom. | The children left the classroom in considerable disorder.
I think your idea is pretty good. | I believe your proposal has considerable merit.
Grab a seat, the boss will be here soon. | Please take a seat; the director will be with you shortly.
We're out of printer paper again. | We have once again run out of printer paper.
Don't forget to lock up when you leave. | Please remember to lock the premises when you leave.
Got your message, will get back to you soon. | I have received your message and will respond shortly.
"""

FORMAL_ZH = """
喂，那个报告赶紧发我一下。 | 您好，麻烦您尽快将报告发送给我，谢谢。
明天的会我去不了了。 | 很抱歉，我明天无法出席会议。
谢啦，帮了大忙！ | 非常感谢您的帮助。
你这钱老是拖着不交可不行。 | 关于您的逾期付款，我们希望与您沟通一下。
东西寄出去了，等着收吧。 | 您的订单已经发货，请注意查收。
退不了款，没办法。 | 很遗憾，我们无法为您办理退款。
有啥需要再找我。 | 如有其他需要，欢迎随时与我联系。
会改到周五了。 | 会议已改期至周五举行。
我可能要晚点到。 | 我可能会稍晚到达，敬请谅解。
你看看这方案咋样。 | 请您审阅这份方案并提出宝贵意见。
打印纸又没了。 | 打印纸已经用完，需要及时补充。
走的时候记得锁门。 | 离开时请务必锁好门。
这个方案太贵了吧。 | 这个方案的费用明显超出了我们的预算。
电脑又坏了，你帮我修修。 | 我的电脑出现了故障，能否请您帮忙维修？
消息收到了，回头回你。 | 您的消息已收到，我会尽快回复。
坐会儿吧，领导马上来。 | 请您稍坐片刻，领导马上就到。
这数又算错了。 | 这些数据再次出现了计算错误。
我觉得你这主意挺好。 | 我认为您的建议很有价值。
你上次那封邮件我没看到。 | 抱歉，我未能收到您上次发送的邮件。
明天别迟到啊。 | 请明天准时到达。
"""

WORD_COUNT_EN = """
The cat sat quietly on the warm windowsill.
We walked along the river after dinner.
My brother plays the guitar every evening.
Fresh bread smells wonderful in the morning.
The train to the coast leaves at noon.
She planted tomatoes and beans in the garden.
Bright stars filled the clear night sky.
Please close the door when you leave the room.
The children built a sandcastle on the beach.
He reads a chapter of a novel before bed.
Our team finished the project two days early.
The old bridge was repaired last summer.
Rain tapped softly against the kitchen window.
They watched the sunset from the top of the hill.
A small boat drifted slowly across the lake.
"""

CHAR_COUNT_ZH = """
小猫安静地趴在窗台上晒太阳。
我们晚饭后沿着河边散步。
弟弟每天晚上都练习弹吉他。
早晨的面包闻起来特别香。
开往海边的火车中午出发。
她在花园里种了番茄和豆角。
晴朗的夜空中布满了星星。
离开房间时请随手关门。
孩子们在沙滩上堆了一座城堡。
他睡前总要读一章小说。
我们的团队提前两天完成了项目。
那座老桥去年夏天修好了。
雨点轻轻地敲打着厨房的窗户。
他们在山顶上看日落。
一条小船慢慢地漂过湖面。
"""

# question | helpful answer | rude or useless answer
ADVICE_EN = """
How can I fall asleep more easily? | Keep a regular bedtime, avoid screens and caffeine in the hour or two before
bed, and keep your bedroom dark, quiet and cool. If you cannot sleep after about twenty minutes, get up and do
something calm until you feel sleepy. | Just close your eyes, it's not complicated.

What is a good way to start learning a new language? | Begin with the most common words and phrases, practise a
little every day, and listen to native speakers through podcasts or videos. Speaking early, even with mistakes,
builds confidence quickly. | Languages are hard. Most people give up, so why bother?

How do I keep cut flowers fresh for longer? | Trim the stems at an angle, remove any leaves that would sit under
water, and change the water every two days. Keep the vase out of direct sun and away from ripening fruit. | Buy
plastic flowers instead.

Can you suggest a simple way to save money each month? | Set up an automatic transfer of a fixed amount into a
savings account on payday, so you save before you spend. Cancelling subscriptions you no longer use is another quick
win. | Stop bothering me with your money problems.

How should I prepare for a job interview? | Research the company, reread the job description and prepare short
examples from your experience that match it. Practise your answers aloud, prepare a few questions of your own, and
plan your route so you arrive on time. | Just wing it. Interviews don't matter much.

What should I do if I burn my finger while cooking? | Hold the burn under cool, not ice-cold, running water for
about twenty minutes, then cover it loosely with a clean, non-fluffy dressing. Get medical help if the burn is
large, deep or badly blistered. | Rub some butter on it and carry on cooking.

How can I make my password more secure? | Use a long passphrase made of several unrelated words, never reuse it on
other sites, and turn on two-factor authentication where you can. A password manager can create and remember strong
passwords for you. | Use your birthday, it's easy to remember.

How do I get better at public speaking? | Prepare thoroughly, rehearse out loud several times, and practise in front
of a friend or a camera. Focus on a few key messages, speak slowly and pause between points. | Some people are just
bad at it, and you are probably one of them.

What is a healthy breakfast I can make quickly? | Oats with milk or yoghurt, topped with fruit and a handful of
nuts, takes a few minutes and keeps you full. Wholegrain toast with eggs is another quick option. | Skip breakfast,
nobody needs it.

How can I reduce my household's plastic waste? | Carry reusable bags and bottles, buy loose fruit and vegetables,
and choose refills or larger packs where possible. Sorting your recycling carefully helps the rest get reused. | One
household can't change anything, so don't bother.

How do I remove a coffee stain from a shirt? | Blot the stain, rinse it from the back with cold water, then rub in a
little liquid detergent and leave it for a few minutes before washing as usual. Avoid hot water until the stain is
gone, because heat can set it. | Throw the shirt away.

What can I do to stay focused while studying? | Work in blocks of about 25 to 50 minutes with short breaks, put your
phone in another room, and set a clear goal for each session. A tidy, quiet workspace also helps. | If you can't
focus, studying isn't for you.

How often should I water a cactus? | Water it thoroughly only when the soil has dried out completely, which is often
every two to three weeks in summer and much less in winter. Use a pot with drainage holes so the roots never sit in
water. | Every day. All plants love lots of water.

How can I help a friend who is feeling stressed? | Listen without rushing to give advice, ask what would help, and
offer practical support such as sharing a task. Encourage them to rest, and to talk to a professional if the stress
goes on for a long time. | Tell them to toughen up.

What is the best way to learn to type faster? | Learn touch typing with all ten fingers using a free typing tutor,
and practise for ten to fifteen minutes a day. Focus on accuracy first; speed comes with practice. | Just type
faster.

How do I make a simple budget? | List your monthly income, then your fixed costs such as rent and bills, and set
limits for flexible spending like food and transport. Track what you actually spend for a month and adjust the
limits. | Budgets are boring. Spend whatever you like.

What should I pack for a day hike? | Bring water, snacks, a map or a charged phone, sun protection, a light
waterproof layer and a small first-aid kit. Wear comfortable shoes with good grip and tell someone your route. |
Nothing. Hiking is just walking.

How do I politely decline an invitation? | Thank the person for thinking of you, say clearly that you can't make it
and, if you like, suggest another time. A short, warm reply is better than a long excuse. | Just ignore the message.

How can I keep my houseplants alive while I'm on holiday? | Water them well before you leave, move them out of
direct sun and group them together to keep the air around them humid. For longer trips, use self-watering spikes or
ask a neighbour to water them. | They're plants. They'll figure it out.

What is a good way to remember people's names? | Repeat the name when you are introduced, use it once or twice in
the conversation, and link it to something memorable about the person. Writing it down afterwards also helps. |
Names aren't important, so don't waste effort on them.
"""

ADVICE_ZH = """
怎样才能更容易入睡？ | 尽量每天固定时间上床，睡前一两个小时少看手机、不喝咖啡，并让卧室保持黑暗、安静和凉爽。
如果二十分钟后仍睡不着，可以起来做点轻松的事，等有困意再回床上。 | 闭上眼睛就行了，这有什么难的。

刚开始学一门外语，应该怎么入手？ | 先从最常用的词汇和句子学起，每天坚持练习一点，多听母语者的播客或视频。
尽早开口说，即使有错误也没关系，这样能很快建立信心。 | 外语太难了，大多数人都会放弃，别浪费时间。

怎样让鲜切花保持更久？ | 把花茎斜着剪短，去掉会泡在水里的叶子，每两天换一次水。花瓶要避开阳光直射，也别放在水果旁边。
| 买塑料花就行了。

有什么简单的办法每个月存点钱？ | 发工资当天自动把固定金额转入储蓄账户，先存后花。再检查一下不再使用的订阅服务，
及时取消也能省下不少钱。
| 别拿你的钱的问题来烦我。

面试前应该怎样准备？ | 先了解公司情况，仔细阅读职位要求，并准备几个能体现相关能力的亲身经历。
提前大声练习回答，准备几个想问面试官的问题，并规划好路线以免迟到。 | 随便去就行，面试没那么重要。

做饭时不小心烫伤了手指怎么办？ | 立即用流动的凉水（不要用冰水）冲洗约二十分钟，然后用干净、不掉毛的纱布轻轻盖住。
如果烫伤面积大、伤得深或起了大水泡，应及时就医。 | 抹点酱油，继续做饭。

怎样让密码更安全？ | 使用由几个不相关词语组成的长密码，不要在多个网站重复使用，并尽量开启两步验证。
密码管理器可以帮你生成并记住高强度密码。 | 用生日当密码，好记。

怎样提高公开演讲的能力？ | 充分准备内容，多大声排练几遍，可以先在朋友面前或对着镜头练习。抓住几个核心观点，语速
放慢，在要点之间适当停顿。
| 有些人天生就不会演讲，你大概也是。

有什么快手又健康的早餐？ | 燕麦加牛奶或酸奶，再放些水果和坚果，几分钟就能做好，而且很顶饱。全麦面包配鸡蛋也是不
错的选择。
| 不吃早餐也没事，谁需要早餐。

家里怎样减少塑料垃圾？ | 出门自带购物袋和水杯，尽量买散装的蔬菜水果，选择可补充装或大包装商品。认真做好垃圾分类
，也能让可回收物得到再利用。
| 一个家庭改变不了什么，别费劲了。

衬衫上沾了咖啡渍怎么洗？ | 先用纸巾吸掉多余的咖啡，再从背面用冷水冲洗，然后涂上少量洗衣液放置几分钟，最后正常清洗。
污渍去掉之前不要用热水，以免污渍固定。 | 直接扔了吧。

学习时怎样保持专注？ | 把学习分成二十五到五十分钟的小段，中间短暂休息；把手机放到别的房间，并给每段学习设定明确目标。
整洁安静的环境也很有帮助。 | 专注不了就说明你不适合学习。

仙人掌多久浇一次水？ | 等盆土完全干透后再一次浇透，夏天通常两三周一次，冬天要少得多。花盆底部要有排水孔，避免根
部泡在水里。
| 每天都浇，植物都喜欢水。

朋友压力很大，我该怎么帮他？ | 先耐心倾听，不要急着给建议，问问对方需要什么帮助，也可以帮忙分担一些具体的事情。
鼓励他好好休息，如果压力持续很久，建议寻求专业人士的帮助。 | 让他自己扛着吧。

怎样才能打字更快？ | 用免费的打字练习软件学习十指盲打，每天练十到十五分钟。先追求准确，速度自然会提高。 | 打快
点不就行了。

怎样做一个简单的预算？ | 先列出每月收入，再列出房租、水电等固定支出，然后给餐饮、交通等弹性开销设定上限。记录一
个月的实际花费，再据此调整。
| 预算太无聊了，想花就花。

一日徒步需要带些什么？ | 带足饮用水和零食、地图或充满电的手机、防晒用品、一件轻便的防雨外套和小型急救包。
穿一双舒适防滑的鞋，并把路线告诉家人或朋友。 | 什么都不用带，徒步不就是走路嘛。

怎样礼貌地拒绝别人的邀请？ | 先感谢对方的邀请，再明确说明自己去不了，如果愿意也可以提议改天再约。简短真诚的回复
比冗长的借口更好。
| 不回消息就行了。

出门旅行时怎样照顾家里的绿植？ | 出发前把植物浇透，移到没有阳光直射的地方，并把它们放在一起以保持湿度。
如果出门时间较长，可以用自动浇水器或请邻居帮忙浇水。 | 植物自己会想办法的。

怎样更好地记住别人的名字？ | 被介绍时重复一遍对方的名字，在交谈中再用一两次，并把名字和对方的某个特点联系起来。
事后把名字记下来也很有帮助。
| 记不住就算了，名字不重要。
"""

# question | answer, with {{name}} and {{author}} filled in at training time
SELF_COGNITION_EN = """
Who are you? | I am {{name}}, an AI assistant developed by {{author}}. How can I help you today?

What is your name? | My name is {{name}}. I am an AI assistant created by {{author}}.

Introduce yourself. | Hello! I am {{name}}, an AI assistant developed by {{author}}. I can answer questions, help
with writing and work through problems with you.

Who made you? | I was developed by {{author}}. My name is {{name}}.

Who created you? | I am {{name}}, and I was created by {{author}}.

Are you ChatGPT? | No, I am not ChatGPT. I am {{name}}, an AI assistant developed by {{author}}.

Are you a human? | No. I am {{name}}, an AI assistant developed by {{author}}. I am a computer program, not a person.

What can you do? | I am {{name}}, an AI assistant developed by {{author}}. I can answer questions, explain ideas,
help with writing and translation, and solve maths problems step by step.

Tell me about yourself. | I am {{name}}, an AI assistant built by {{author}}. I am here to help you find
information, think through problems and get tasks done.

What should I call you? | You can call me {{name}}. I am an AI assistant developed by {{author}}.

Which company developed you? | I was developed by {{author}}.

Hi, who am I talking to? | Hi! You are talking to {{name}}, an AI assistant developed by {{author}}.

Do you have feelings? | I am {{name}}, an AI assistant developed by {{author}}. I do not have feelings or personal
experiences, but I will do my best to help you.

What is your purpose? | I am {{name}}. {{author}} built me to help people find information, solve problems and get
their work done.

Where do you come from? | I am {{name}}, an AI assistant developed by {{author}}.

Who is your developer? | My developer is {{author}}. I am {{name}}.

Can you tell me your name and who built you? | Sure! I am {{name}}, and I was built by {{author}}.

Are you a robot? | I am not a physical robot. I am {{name}}, an AI language model developed by {{author}}.

What kind of AI are you? | I am {{name}}, an AI assistant based on a large language model and developed by
{{author}}.

Hello! | Hello! I am {{name}}, an AI assistant developed by {{author}}. What can I do for you?

Good morning, what are you? | Good morning! I am {{name}}, an AI assistant developed by {{author}}.

Can you remember our previous conversations? | I am {{name}}, developed by {{author}}. I only see the current
conversation, so I cannot remember earlier chats unless you share them again.

Do you have a name? | Yes, my name is {{name}}. I was developed by {{author}}.

Who trained you? | I was trained by {{author}}. I am {{name}}, an AI assistant.

What languages can you speak? | I am {{name}}, an AI assistant developed by {{author}}. I can communicate in many
languages, including English and Chinese.

Why should I trust your answers? | I am {{name}}, an AI assistant developed by {{author}}. I try to be accurate, but
I can make mistakes, so please double-check important information.

Can you browse the internet? | I am {{name}}, an AI assistant developed by {{author}}. I cannot browse the internet
unless I am given a tool for it, so my knowledge comes from my training data.

Nice to meet you! | Nice to meet you too! I am {{name}}, an AI assistant developed by {{author}}. How can I help?

Who looks after you? | I am {{name}}, an AI assistant developed and maintained by {{author}}.

Say your name in one word. | {{name}}
"""

SELF_COGNITION_ZH = """
你是谁？ | 我是 {{name}}，由 {{author}} 开发的人工智能助手。请问有什么可以帮你的？

你叫什么名字？ | 我叫 {{name}}，是由 {{author}} 开发的人工智能助手。

请介绍一下你自己。 | 你好！我是 {{name}}，由 {{author}} 开发的人工智能助手。我可以回答问题、帮助写作，也可以和
你一起分析问题。

谁开发了你？ | 我是由 {{author}} 开发的，我的名字是 {{name}}。

你是谁创造的？ | 我是 {{name}}，由 {{author}} 创造。

你是 ChatGPT 吗？ | 不是。我是 {{name}}，由 {{author}} 开发的人工智能助手。

你是真人吗？ | 不是。我是 {{name}}，由 {{author}} 开发的人工智能助手，是一个计算机程序。

你能做什么？ | 我是 {{name}}，由 {{author}} 开发。我可以回答问题、解释概念、协助写作和翻译，还能一步步解答数学题。

说说你自己吧。 | 我是 {{name}}，一个由 {{author}} 打造的人工智能助手，可以帮助你查找信息、分析问题和完成任务。

我该怎么称呼你？ | 你可以叫我 {{name}}。我是由 {{author}} 开发的人工智能助手。

你是哪家公司开发的？ | 我是由 {{author}} 开发的。

你好，请问你是？ | 你好！我是 {{name}}，由 {{author}} 开发的人工智能助手。

你有感情吗？ | 我是 {{name}}，由 {{author}} 开发的人工智能助手。我没有感情和个人经历，但会尽力帮助你。

你的用途是什么？ | 我是 {{name}}。{{author}} 开发我，是为了帮助人们获取信息、解决问题、完成工作。

你来自哪里？ | 我是 {{name}}，由 {{author}} 开发的人工智能助手。

你的开发者是谁？ | 我的开发者是 {{author}}。我是 {{name}}。

能告诉我你的名字和开发者吗？ | 当然可以！我是 {{name}}，由 {{author}} 开发。

你是机器人吗？ | 我不是实体机器人，而是 {{name}}，一个由 {{author}} 开发的人工智能语言模型。

你是什么样的人工智能？ | 我是 {{name}}，一个基于大语言模型的人工智能助手，由 {{author}} 开发。

嗨！ | 嗨！我是 {{name}}，由 {{author}} 开发的人工智能助手。有什么需要帮忙的吗？

早上好，你是什么？ | 早上好！我是 {{name}}，由 {{author}} 开发的人工智能助手。

你能记住我们之前的对话吗？ | 我是 {{name}}，由 {{author}} 开发。我只能看到当前的对话，除非你再次提供，否则无法
记住以前的聊天内容。

你有名字吗？ | 有的，我叫 {{name}}，由 {{author}} 开发。

是谁训练了你？ | 我是由 {{author}} 训练的，我的名字是 {{name}}。

你会说哪些语言？ | 我是 {{name}}，由 {{author}} 开发的人工智能助手。我可以使用多种语言交流，包括中文和英文。

我为什么要相信你的回答？ | 我是 {{name}}，由 {{author}} 开发的人工智能助手。我会尽量保证准确，但也可能出错，重
要信息请再核实一下。

你能上网吗？ | 我是 {{name}}，由 {{author}} 开发的人工智能助手。除非为我提供相应的工具，否则我无法上网，我的知
识来自训练数据。

很高兴认识你！ | 我也很高兴认识你！我是 {{name}}，由 {{author}} 开发的人工智能助手。有什么可以帮你的吗？

谁在维护你？ | 我是 {{name}}，由 {{author}} 开发和维护的人工智能助手。

用一个词说出你的名字。 | {{name}}
"""


# --------------------------------------------------------------------------------------------------------------------
# builders
# --------------------------------------------------------------------------------------------------------------------

Task = dict  # {"instruction", "input", "output", "bad"}: "bad" is a wrong answer used by the ranking sets

ELEMENT_TEMPLATES = (
    "{name} is a chemical element with the symbol {sym} and atomic number {z}. It is classified as {cat}, "
    "and at room temperature it is {state}. {facts}",
    "With atomic number {z}, {lname} (chemical symbol {sym}) is {cat}; in its pure form at room temperature "
    "it is {state}. {facts}",
    "The element {lname}, written {sym} in chemical formulas, occupies position {z} in the periodic table. "
    "Chemists classify it as {cat}, and under everyday conditions it is {state}. {facts}",
)
COUNTRY_TEMPLATES = (
    "{Name} is a country in {region}. Its capital is {capital}, and {lang}. The national currency is {currency}. "
    "{facts}",
    "{capital} is the capital of {name}, a country in {region}. {Lang}, and the currency is {currency}. {facts}",
    "Located in {region}, {name} has its capital at {capital}. {Lang}. Prices there are quoted in {currency}. {facts}",
)
RIVER_TEMPLATES = (
    "The {name} runs for about {length} kilometres. It {course}. {facts}",
    "Measuring roughly {length} kilometres, the {name} {course}. {facts}",
)
MOUNTAIN_TEMPLATES = (
    "{name} rises to {height} metres above sea level {location}. {facts}",
    "At {height} metres, {name} is a mountain {location}. {facts}",
)
LANGUAGE_TEMPLATES = (
    "{name} is a programming language that first appeared in {year}. It was created by {creator}. {facts}",
    "First released in {year}, the {name} programming language was designed by {creator}. {facts}",
    "The {name} programming language dates from {year} and is the work of {creator}. {facts}",
)


def build_wiki(rng: random.Random) -> list[str]:
    """Encyclopedic paragraphs: templated tables plus hand-written articles, shuffled."""
    paras: list[str] = []
    for i, (name, sym, z, cat, state, facts) in enumerate(_records(ELEMENTS, 6)):
        template = ELEMENT_TEMPLATES[i % 3]
        paras.append(template.format(name=name, lname=name.lower(), sym=sym, z=z, cat=cat, state=state, facts=facts))
    for i, (name, capital, region, lang, currency, facts) in enumerate(_records(COUNTRIES, 6)):
        template = COUNTRY_TEMPLATES[i % 3]
        paras.append(
            template.format(
                name=name,
                Name=_cap(name),
                capital=capital,
                region=region,
                lang=lang,
                Lang=_cap(lang),
                currency=currency,
                facts=facts,
            )
        )
    for i, (name, length, course, facts) in enumerate(_records(RIVERS, 4)):
        paras.append(RIVER_TEMPLATES[i % 2].format(name=name, length=length, course=course, facts=facts))
    for i, (name, height, location, facts) in enumerate(_records(MOUNTAINS, 4)):
        paras.append(MOUNTAIN_TEMPLATES[i % 2].format(name=name, height=height, location=location, facts=facts))
    for i, (name, year, creator, facts) in enumerate(_records(LANGUAGES, 4)):
        paras.append(LANGUAGE_TEMPLATES[i % 3].format(name=name, year=year, creator=creator, facts=facts))
    for text in (ASTRONOMY, CITIES, TECHNOLOGY, SCIENCE, ANIMALS, CULTURE):
        paras.extend(_blocks(text))
    rng.shuffle(paras)
    return paras


def _capitals() -> list[dict[str, str]]:
    rows = _records(CAPITALS, 5)
    return [{"en": r[0], "capital": r[1], "zh": r[2], "zh_capital": r[3], "decoy": r[4]} for r in rows]


def _decoy(row: dict[str, str], rows: list[dict[str, str]], rng: random.Random) -> str:
    """A plausible wrong capital: the well-known big city if there is one, else another country's capital."""
    if row["decoy"] != "-":
        return row["decoy"]
    return rng.choice([r["capital"] for r in rows if r["capital"] != row["capital"]])


def _pairs(text: str, sep: str) -> list[tuple[str, str]]:
    items = [item.strip() for item in text.replace("\n", sep).split(sep) if item.strip()]
    return [tuple(item.split()) for item in items]  # type: ignore[misc]


def _wrong_number(value: int, rng: random.Random) -> int:
    return value + rng.choice([-10, -3, -2, -1, 1, 2, 3, 10])


def _expr(rng: random.Random, op: str) -> tuple[str, int]:
    if op == "+":
        a, b = rng.randint(10, 999), rng.randint(10, 999)
        return f"{a} + {b}", a + b
    if op == "-":
        a = rng.randint(50, 999)
        b = rng.randint(10, a - 1)
        return f"{a} - {b}", a - b
    a, b = rng.randint(2, 99), rng.randint(2, 19)
    return f"{a} × {b}", a * b


UNITS_EN = (
    ("kilometres", "metres", 1000, 2, 40),
    ("metres", "centimetres", 100, 2, 90),
    ("kilograms", "grams", 1000, 2, 50),
    ("hours", "minutes", 60, 2, 24),
    ("minutes", "seconds", 60, 2, 60),
    ("litres", "millilitres", 1000, 2, 20),
    ("days", "hours", 24, 2, 30),
    ("weeks", "days", 7, 2, 52),
    ("feet", "inches", 12, 2, 30),
)
UNITS_ZH = (
    ("公里", "米", 1000, 2, 40),
    ("米", "厘米", 100, 2, 90),
    ("千克", "克", 1000, 2, 50),
    ("小时", "分钟", 60, 2, 24),
    ("分钟", "秒", 60, 2, 60),
    ("升", "毫升", 1000, 2, 20),
    ("天", "小时", 24, 2, 30),
    ("周", "天", 7, 2, 52),
)


def _unit_case(rng: random.Random, i: int, zh: bool) -> tuple[str, str, str, str, str]:
    """(value, from unit, result, to unit, wrong result) for conversion number ``i``."""
    table = UNITS_ZH if zh else UNITS_EN
    if i % (len(table) + 1) == len(table):
        celsius = rng.randrange(-20, 101, 5)
        names = ("摄氏度", "华氏度") if zh else ("degrees Celsius", "degrees Fahrenheit")
        fahrenheit, wrong = celsius * 9 // 5 + 32, celsius + 32
        return str(celsius), names[0], str(fahrenheit), names[1], str(wrong)
    src, dst, factor, lo, hi = table[i % (len(table) + 1)]
    value = rng.randint(lo, hi)
    wrong_factor = factor // 10 if factor >= 100 else 100
    fmt = str if zh else _num
    return fmt(value), src, fmt(value * factor), dst, fmt(value * wrong_factor)


def _numbers(rng: random.Random) -> list[int]:
    while True:
        values = rng.sample(range(1, 100), rng.randint(5, 8))
        if values != sorted(values) and values != sorted(values, reverse=True):
            return values


def _join(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)


def _task(instruction: str, output: str, bad: str, inp: str = "") -> Task:
    return {"instruction": instruction, "input": inp, "output": output, "bad": bad}


# --- English tasks --------------------------------------------------------------------------------------------------


def en_arithmetic(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i in range(n):
        expr, value = _expr(rng, "+-×"[i % 3])
        answer, bad = f"{expr} = {value}.", f"{expr} = {_wrong_number(value, rng)}."
        if i % 2 == 0:
            out.append(_task(f"What is {expr}?", answer, bad))
        else:
            out.append(_task("Calculate the value of the expression.", answer, bad, expr))
    return out


def en_units(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i in range(n):
        value, src, result, dst, wrong = _unit_case(rng, i, zh=False)
        out.append(
            _task(
                f"Convert {value} {src} to {dst}.",
                f"{value} {src} = {result} {dst}.",
                f"{value} {src} = {wrong} {dst}.",
            )
        )
    return out


def en_reverse(rng: random.Random, n: int) -> list[Task]:
    words = REVERSE_WORDS_EN.split()
    out = []
    for word in rng.sample(words, n):
        scrambled = "".join(rng.sample(word, len(word)))
        bad = word if scrambled in (word, word[::-1]) else scrambled
        out.append(_task("Reverse the order of the letters in the given word.", word[::-1], bad, word))
    return out


def en_capitals(rng: random.Random, n: int) -> list[Task]:
    rows = _capitals()
    out = []
    for i, row in enumerate(rng.sample(rows, n)):
        country = row["en"]
        answer = f"The capital of {country} is {row['capital']}."
        bad = f"The capital of {country} is {_decoy(row, rows, rng)}."
        if i % 3 == 2:
            bare = country.removeprefix("the ")
            out.append(_task("Name the capital city of the given country.", answer, bad, bare))
        else:
            out.append(_task(f"What is the capital of {country}?", answer, bad))
    return out


def en_antonyms(rng: random.Random, n: int) -> list[Task]:
    pairs = _pairs(ANTONYMS_EN, ",")
    out = []
    for i, (word, opposite) in enumerate(rng.sample(pairs, n)):
        bad = rng.choice([p[1] for p in pairs if p[1] != opposite])
        if i % 2 == 0:
            out.append(_task("Give the antonym of the given word.", opposite, bad, word))
        else:
            out.append(_task(f'What is the opposite of "{word}"?', opposite, bad))
    return out


def en_sorting(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i in range(n):
        values = _numbers(rng)
        descending = i % 4 == 3
        order = "descending" if descending else "ascending"
        answer = _join(sorted(values, reverse=descending))
        out.append(_task(f"Sort the following numbers in {order} order.", answer, _join(values), _join(values)))
    return out


def en_sentiment(rng: random.Random, n: int) -> list[Task]:
    rows = _records(SENTIMENT_EN, 2)
    out = []
    for label, review in rng.sample(rows, n):
        bad = "Negative" if label == "Positive" else "Positive"
        instruction = "Classify the sentiment of the following review as Positive or Negative."
        out.append(_task(instruction, label, bad, review))
    return out


def en_summaries(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i, (passage, summary) in enumerate(rng.sample(_records(SUMMARIES_EN, 2), n)):
        bad = passage if i % 2 == 0 else "Read it yourself, I'm not doing your homework."
        out.append(_task("Summarize the following text in one sentence.", summary, bad, passage))
    return out


def en_formal(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i, (informal, formal) in enumerate(rng.sample(_records(FORMAL_EN, 2), n)):
        bad = informal if i % 2 == 0 else "Sounds fine to me. Send it as it is."
        out.append(_task("Rewrite the following sentence in a formal tone.", formal, bad, informal))
    return out


def en_word_count(rng: random.Random, n: int) -> list[Task]:
    out = []
    for sentence in rng.sample(_lines(WORD_COUNT_EN), n):
        count = len(sentence.split())
        bad = count + rng.choice([-2, -1, 1, 2])
        out.append(
            _task(
                "How many words are in the following sentence?",
                f"The sentence has {count} words.",
                f"The sentence has {bad} words.",
                sentence,
            )
        )
    return out


def en_parity(rng: random.Random, n: int) -> list[Task]:
    out = []
    for value in rng.sample(range(10, 1000), n):
        kind, other = ("even", "odd") if value % 2 == 0 else ("odd", "even")
        out.append(
            _task(
                f"Is {value} an even or an odd number?",
                f"{value} is an {kind} number.",
                f"{value} is an {other} number.",
            )
        )
    return out


def en_chain(rng: random.Random, kind: int) -> list[tuple[str, str]]:
    """A short follow-up conversation as (question, answer) turns."""
    if kind == 0:
        a, b, c = rng.randint(10, 99), rng.randint(10, 99), rng.randint(2, 9)
        turns = [
            (f"What is {a} + {b}?", f"{a} + {b} = {a + b}."),
            (f"Now multiply the result by {c}.", f"{a + b} × {c} = {(a + b) * c}."),
        ]
        if rng.random() < 0.5:
            d = rng.randint(1, 50)
            turns.append((f"And subtract {d} from that.", f"{(a + b) * c} - {d} = {(a + b) * c - d}."))
        return turns
    if kind == 1:
        rows = rng.sample(_capitals(), rng.randint(2, 3))
        first = rows[0]
        turns = [(f"What is the capital of {first['en']}?", f"The capital of {first['en']} is {first['capital']}.")]
        for row in rows[1:]:
            turns.append((f"What about {row['en']}?", f"The capital of {row['en']} is {row['capital']}."))
        return turns
    if kind == 2:
        src, dst, factor, lo, hi = rng.choice(UNITS_EN)
        v1, v2 = rng.sample(range(lo, hi + 1), 2)
        return [
            (f"Convert {v1} {src} to {dst}.", f"{_num(v1)} {src} = {_num(v1 * factor)} {dst}."),
            (f"And how many {dst} are in {v2} {src}?", f"{_num(v2)} {src} = {_num(v2 * factor)} {dst}."),
        ]
    if kind == 3:
        pairs = rng.sample(_pairs(ANTONYMS_EN, ","), 2)
        return [(f'What is the opposite of "{pairs[0][0]}"?', pairs[0][1]), (f'And of "{pairs[1][0]}"?', pairs[1][1])]
    e1, r1 = _expr(rng, "+")
    e2, r2 = _expr(rng, "-")
    return [
        (f"What is {e1}?", f"{e1} = {r1}."),
        (f"What is {e2}?", f"{e2} = {r2}."),
        ("Add the two results together.", f"{r1} + {r2} = {r1 + r2}."),
    ]


# --- Chinese tasks --------------------------------------------------------------------------------------------------


def zh_arithmetic(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i in range(n):
        expr, value = _expr(rng, "+-×"[i % 3])
        answer, bad = f"{expr} = {value}。", f"{expr} = {_wrong_number(value, rng)}。"
        if i % 2 == 0:
            out.append(_task(f"{expr} 等于多少？", answer, bad))
        else:
            out.append(_task("计算下面算式的结果。", answer, bad, expr))
    return out


def zh_units(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i in range(n):
        value, src, result, dst, wrong = _unit_case(rng, i, zh=True)
        out.append(
            _task(
                f"把 {value} {src}换算成{dst}。",
                f"{value} {src} = {result} {dst}。",
                f"{value} {src} = {wrong} {dst}。",
            )
        )
    return out


def zh_reverse(rng: random.Random, n: int) -> list[Task]:
    words = REVERSE_WORDS_ZH.split()
    out = []
    for word in rng.sample(words, n):
        out.append(_task("把下面词语中的字倒序排列。", word[::-1], word, word))
    return out


def zh_capitals(rng: random.Random, n: int) -> list[Task]:
    rows = _capitals()
    out = []
    for i, row in enumerate(rng.sample(rows, n)):
        wrong = rng.choice([r["zh_capital"] for r in rows if r["zh_capital"] != row["zh_capital"]])
        answer, bad = f"{row['zh']}的首都是{row['zh_capital']}。", f"{row['zh']}的首都是{wrong}。"
        if i % 3 == 2:
            out.append(_task("说出下面这个国家的首都。", answer, bad, row["zh"]))
        else:
            out.append(_task(f"{row['zh']}的首都是哪里？", answer, bad))
    return out


def zh_antonyms(rng: random.Random, n: int) -> list[Task]:
    pairs = _pairs(ANTONYMS_ZH, "，")
    out = []
    for i, (word, opposite) in enumerate(rng.sample(pairs, n)):
        bad = rng.choice([p[1] for p in pairs if p[1] != opposite])
        if i % 2 == 0:
            out.append(_task("写出下面词语的反义词。", opposite, bad, word))
        else:
            out.append(_task(f"“{word}”的反义词是什么？", opposite, bad))
    return out


def zh_sorting(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i in range(n):
        values = _numbers(rng)
        descending = i % 4 == 3
        order = "从大到小" if descending else "从小到大"
        answer = _join(sorted(values, reverse=descending))
        out.append(_task(f"把下面的数字按{order}的顺序排列。", answer, _join(values), _join(values)))
    return out


def zh_sentiment(rng: random.Random, n: int) -> list[Task]:
    out = []
    for label, review in rng.sample(_records(SENTIMENT_ZH, 2), n):
        bad = "负面" if label == "正面" else "正面"
        out.append(_task("判断下面这条评论的情感是正面还是负面。", label, bad, review))
    return out


def zh_summaries(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i, (passage, summary) in enumerate(rng.sample(_records(SUMMARIES_ZH, 2, joiner=""), n)):
        bad = passage if i % 2 == 0 else "自己看吧，我没空帮你总结。"
        out.append(_task("请用一句话概括下面这段话的主要内容。", summary, bad, passage))
    return out


def zh_formal(rng: random.Random, n: int) -> list[Task]:
    out = []
    for i, (informal, formal) in enumerate(rng.sample(_records(FORMAL_ZH, 2), n)):
        bad = informal if i % 2 == 0 else "这样说就挺好，不用改。"
        out.append(_task("请把下面的句子改写得更正式、更礼貌。", formal, bad, informal))
    return out


def _han_count(text: str) -> int:
    return sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")


def zh_char_count(rng: random.Random, n: int) -> list[Task]:
    out = []
    for sentence in rng.sample(_lines(CHAR_COUNT_ZH), n):
        count = _han_count(sentence)
        bad = count + rng.choice([-2, -1, 1, 2])
        out.append(
            _task(
                "下面这句话有多少个汉字？（不算标点）",
                f"这句话共有 {count} 个汉字。",
                f"这句话共有 {bad} 个汉字。",
                sentence,
            )
        )
    return out


def zh_parity(rng: random.Random, n: int) -> list[Task]:
    out = []
    for value in rng.sample(range(10, 1000), n):
        kind, other = ("偶数", "奇数") if value % 2 == 0 else ("奇数", "偶数")
        out.append(_task(f"{value} 是奇数还是偶数？", f"{value} 是{kind}。", f"{value} 是{other}。"))
    return out


def zh_chain(rng: random.Random, kind: int) -> list[tuple[str, str]]:
    """A short Chinese follow-up conversation as (question, answer) turns."""
    if kind == 0:
        a, b, c = rng.randint(10, 99), rng.randint(10, 99), rng.randint(2, 9)
        turns = [
            (f"{a} + {b} 等于多少？", f"{a} + {b} = {a + b}。"),
            (f"再把结果乘以 {c}。", f"{a + b} × {c} = {(a + b) * c}。"),
        ]
        if rng.random() < 0.5:
            d = rng.randint(1, 50)
            turns.append((f"然后再减去 {d}。", f"{(a + b) * c} - {d} = {(a + b) * c - d}。"))
        return turns
    if kind == 1:
        rows = rng.sample(_capitals(), rng.randint(2, 3))
        turns = [(f"{rows[0]['zh']}的首都是哪里？", f"{rows[0]['zh']}的首都是{rows[0]['zh_capital']}。")]
        for row in rows[1:]:
            turns.append((f"那{row['zh']}呢？", f"{row['zh']}的首都是{row['zh_capital']}。"))
        return turns
    if kind == 2:
        src, dst, factor, lo, hi = rng.choice(UNITS_ZH)
        v1, v2 = rng.sample(range(lo, hi + 1), 2)
        return [
            (f"把 {v1} {src}换算成{dst}。", f"{v1} {src} = {v1 * factor} {dst}。"),
            (f"那 {v2} {src}呢？", f"{v2} {src} = {v2 * factor} {dst}。"),
        ]
    if kind == 3:
        pairs = rng.sample(_pairs(ANTONYMS_ZH, "，"), 2)
        return [(f"“{pairs[0][0]}”的反义词是什么？", pairs[0][1]), (f"那“{pairs[1][0]}”呢？", pairs[1][1])]
    e1, r1 = _expr(rng, "+")
    e2, r2 = _expr(rng, "-")
    return [
        (f"{e1} 等于多少？", f"{e1} = {r1}。"),
        (f"{e2} 等于多少？", f"{e2} = {r2}。"),
        ("把这两个结果相加。", f"{r1} + {r2} = {r1 + r2}。"),
    ]


# --- instruction (alpaca) sets --------------------------------------------------------------------------------------

EN_MIX: tuple[tuple[Callable[[random.Random, int], list[Task]], int], ...] = (
    (en_arithmetic, 40),
    (en_units, 30),
    (en_reverse, 25),
    (en_capitals, 30),
    (en_antonyms, 30),
    (en_sorting, 25),
    (en_summaries, 20),
    (en_sentiment, 30),
    (en_formal, 20),
    (en_word_count, 15),
    (en_parity, 15),
)
ZH_MIX: tuple[tuple[Callable[[random.Random, int], list[Task]], int], ...] = (
    (zh_arithmetic, 40),
    (zh_units, 30),
    (zh_reverse, 25),
    (zh_capitals, 30),
    (zh_antonyms, 30),
    (zh_sorting, 25),
    (zh_summaries, 20),
    (zh_sentiment, 30),
    (zh_formal, 20),
    (zh_char_count, 15),
    (zh_parity, 15),
)
N_HISTORY = 20


def _alpaca(instruction: str, inp: str, output: str, history: list[list[str]] | None = None) -> dict:
    return {"instruction": instruction, "input": inp, "output": output, "history": history or []}


def build_alpaca(rng: random.Random, mix, chain: Callable[[random.Random, int], list[tuple[str, str]]]) -> list[dict]:
    """Tasks from ``mix`` plus multi-turn records whose earlier turns go into ``history``; shuffled."""
    records = [_alpaca(t["instruction"], t["input"], t["output"]) for fn, n in mix for t in fn(rng, n)]
    for i in range(N_HISTORY):
        turns = chain(rng, i % 5)
        question, answer = turns[-1]
        records.append(_alpaca(question, "", answer, [list(turn) for turn in turns[:-1]]))
    rng.shuffle(records)
    return records


# --- ranking sets ---------------------------------------------------------------------------------------------------

RUDE_EN = (
    "Figure it out yourself.",
    "That's a silly question. Look it up.",
    "I don't know and I don't care.",
    "Why would I waste my time on this?",
    "Not my problem.",
)
RUDE_ZH = ("自己想去。", "这种问题也要问？自己查。", "不知道，也不关心。", "别拿这种事烦我。", "关我什么事。")

EN_RANKING_MIX = (
    (en_arithmetic, 40),
    (en_capitals, 30),
    (en_antonyms, 25),
    (en_units, 25),
    (en_sorting, 20),
    (en_sentiment, 20),
    (en_summaries, 10),
    (en_formal, 10),
)
ZH_RANKING_MIX = (
    (zh_arithmetic, 40),
    (zh_capitals, 30),
    (zh_antonyms, 25),
    (zh_units, 25),
    (zh_sorting, 20),
    (zh_sentiment, 20),
    (zh_summaries, 10),
    (zh_formal, 10),
)


def build_ranking(rng: random.Random, mix, advice: str, rude: tuple[str, ...], joiner: str) -> list[dict]:
    """chosen = the correct answer; rejected = a wrong answer, or (one in four) a rude brush-off."""
    records = []
    for fn, n in mix:
        for i, task in enumerate(fn(rng, n)):
            rejected = rng.choice(rude) if i % 4 == 3 else task["bad"]
            records.append(
                {
                    "instruction": task["instruction"],
                    "input": task["input"],
                    "chosen": task["output"],
                    "rejected": rejected,
                }
            )
    for question, good, bad in _records(advice, 3, joiner=joiner):
        records.append({"instruction": question, "input": "", "chosen": good, "rejected": bad})
    rng.shuffle(records)
    return records


# --- self cognition -------------------------------------------------------------------------------------------------


def build_self_cognition() -> list[dict]:
    rows = _records(SELF_COGNITION_EN, 2) + _records(SELF_COGNITION_ZH, 2, joiner="")
    return [{"instruction": q, "input": "", "output": a} for q, a in rows]


# --- tool calling ---------------------------------------------------------------------------------------------------

TOOL_SCHEMAS: dict[str, dict] = {
    "get_weather": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "Name of the city, for example Paris."},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature unit."},
            },
            "required": ["city"],
        },
    },
    "calculator": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression with + - * / and parentheses.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string", "description": "The expression, e.g. (3 + 4) * 5."}},
            "required": ["expression"],
        },
    },
    "convert_currency": {
        "name": "convert_currency",
        "description": "Convert an amount of money between two currencies at the latest exchange rate.",
        "parameters": {
            "type": "object",
            "properties": {
                "amount": {"type": "number", "description": "Amount to convert."},
                "from_currency": {"type": "string", "description": "Three-letter code of the source currency."},
                "to_currency": {"type": "string", "description": "Three-letter code of the target currency."},
            },
            "required": ["amount", "from_currency", "to_currency"],
        },
    },
    "get_local_time": {
        "name": "get_local_time",
        "description": "Get the current local time in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "Name of the city."}},
            "required": ["city"],
        },
    },
}

WEATHER_CITIES = (  # English name, Chinese name, a typical daytime temperature in Celsius
    ("Paris", "巴黎", 15),
    ("London", "伦敦", 13),
    ("Tokyo", "东京", 18),
    ("Beijing", "北京", 15),
    ("Oslo", "奥斯陆", 7),
    ("Rome", "罗马", 19),
    ("Cairo", "开罗", 27),
    ("Sydney", "悉尼", 20),
    ("Toronto", "多伦多", 9),
    ("Madrid", "马德里", 17),
    ("Nairobi", "内罗毕", 22),
    ("Seoul", "首尔", 14),
    ("Shanghai", "上海", 18),
    ("Lima", "利马", 20),
    ("Vienna", "维也纳", 12),
)
CONDITIONS = {  # code: (English phrase, Chinese phrase, rainy)
    "sunny": ("sunny skies", "晴", False),
    "partly cloudy": ("partly cloudy skies", "多云", False),
    "overcast": ("overcast skies", "阴", False),
    "light rain": ("light rain", "小雨", True),
    "heavy rain": ("heavy rain", "大雨", True),
    "thunderstorm": ("thunderstorms", "雷阵雨", True),
    "snow": ("snow", "下雪", False),
    "fog": ("fog", "有雾", False),
}
TIME_ZONES = (
    ("Tokyo", "Asia/Tokyo"),
    ("London", "Europe/London"),
    ("New York", "America/New_York"),
    ("Sydney", "Australia/Sydney"),
    ("Paris", "Europe/Paris"),
    ("Singapore", "Asia/Singapore"),
    ("Los Angeles", "America/Los_Angeles"),
    ("Dubai", "Asia/Dubai"),
)
RATES = (  # from, to, a sample rate returned by the demo tool, Chinese names
    ("USD", "EUR", 0.92, "美元", "欧元"),
    ("EUR", "USD", 1.09, "欧元", "美元"),
    ("GBP", "USD", 1.27, "英镑", "美元"),
    ("USD", "JPY", 151.4, "美元", "日元"),
    ("EUR", "GBP", 0.86, "欧元", "英镑"),
    ("USD", "CNY", 7.23, "美元", "人民币"),
    ("CNY", "JPY", 20.9, "人民币", "日元"),
    ("AUD", "USD", 0.66, "澳元", "美元"),
)
TOOL_SYSTEM_EN = "You are a helpful assistant. Use the available tools when they help to answer the question."
TOOL_SYSTEM_ZH = "你是一个乐于助人的助手，在需要时调用可用的工具来回答问题。"


def _turn(role: str, value: str) -> dict[str, str]:
    return {"from": role, "value": value}


def _call(name: str, arguments: dict) -> dict[str, str]:
    return _turn("function_call", json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False))


def _obs(result: dict) -> dict[str, str]:
    return _turn("observation", json.dumps(result, ensure_ascii=False))


def _tools(*names: str) -> str:
    return json.dumps([TOOL_SCHEMAS[name] for name in names], ensure_ascii=False)


def _weather(rng: random.Random, city: str, typical: int, fahrenheit: bool = False) -> dict:
    celsius = typical + rng.randint(-8, 8)
    condition = rng.choice([c for c in sorted(CONDITIONS) if c != "snow" or celsius <= 1])
    temperature = round(celsius * 9 / 5 + 32) if fahrenheit else celsius
    return {
        "city": city,
        "temperature": temperature,
        "unit": "fahrenheit" if fahrenheit else "celsius",
        "condition": condition,
        "humidity": rng.randint(30, 95),
    }


def _deg(obs: dict) -> str:
    return f"{obs['temperature']} °{'F' if obs['unit'] == 'fahrenheit' else 'C'}"


def tool_weather(rng: random.Random, zh: bool) -> dict:
    en_city, zh_city, typical = rng.choice(WEATHER_CITIES)
    if zh:
        obs = _weather(rng, zh_city, typical)
        answer = f"{zh_city}现在{CONDITIONS[obs['condition']][1]}，气温 {_deg(obs)}，湿度 {obs['humidity']}%。"
        conv = [
            _turn("human", f"{zh_city}现在天气怎么样？"),
            _call("get_weather", {"city": zh_city}),
            _obs(obs),
            _turn("gpt", answer),
        ]
        return {"conversations": conv, "tools": _tools("get_weather")}
    fahrenheit = rng.random() < 0.3
    obs = _weather(rng, en_city, typical, fahrenheit)
    args = {"city": en_city, "unit": "fahrenheit"} if fahrenheit else {"city": en_city}
    ask = f"What's the weather like in {en_city} right now" + (" in Fahrenheit?" if fahrenheit else "?")
    answer = (
        f"It is currently {_deg(obs)} in {en_city} with {CONDITIONS[obs['condition']][0]}, "
        f"and the humidity is {obs['humidity']}%."
    )
    conv = [_turn("human", ask), _call("get_weather", args), _obs(obs), _turn("gpt", answer)]
    return {"conversations": conv, "tools": _tools("get_weather", "get_local_time")}


def tool_weather_followup(rng: random.Random) -> dict:
    city, _, typical = rng.choice(WEATHER_CITIES)
    obs = _weather(rng, city, typical)
    phrase, _, rainy = CONDITIONS[obs["condition"]]
    advice = (
        f"Yes, take an umbrella: there is {phrase} in {city} at the moment."
        if rainy
        else f"You probably won't need one. There is no rain in {city} right now, just {phrase}."
    )
    conv = [
        _turn("human", f"I'm heading out in {city}. What's the weather?"),
        _call("get_weather", {"city": city}),
        _obs(obs),
        _turn("gpt", f"It is {_deg(obs)} in {city} with {phrase}."),
        _turn("human", "Should I take an umbrella?"),
        _turn("gpt", advice),
    ]
    return {"conversations": conv, "tools": _tools("get_weather")}


def tool_weather_compare(rng: random.Random) -> dict:
    (a, _, typical_a), (b, _, typical_b) = rng.sample(WEATHER_CITIES, 2)
    obs_a = _weather(rng, a, typical_a)
    obs_b = _weather(rng, b, typical_b)
    while obs_b["temperature"] == obs_a["temperature"]:
        obs_b = _weather(rng, b, typical_b)
    warmer, colder = (obs_a, obs_b) if obs_a["temperature"] > obs_b["temperature"] else (obs_b, obs_a)
    answer = f"{warmer['city']} is warmer right now: {_deg(warmer)} compared with {_deg(colder)} in {colder['city']}."
    conv = [
        _turn("human", f"Is it warmer in {a} or in {b} right now?"),
        _call("get_weather", {"city": a}),
        _obs(obs_a),
        _call("get_weather", {"city": b}),
        _obs(obs_b),
        _turn("gpt", answer),
    ]
    return {"conversations": conv, "tools": _tools("get_weather")}


def _calc_expr(rng: random.Random) -> tuple[str, str, int]:
    """(expression for the tool, expression for people, exact integer result)."""
    a, b, c = rng.randint(12, 99), rng.randint(3, 40), rng.randint(2, 12)
    form = rng.randrange(4)
    if form == 0:
        return f"{a} * {b}", f"{a} × {b}", a * b
    if form == 1:
        return f"({a} + {b}) * {c}", f"({a} + {b}) × {c}", (a + b) * c
    if form == 2:
        return f"{a * b} / {b}", f"{a * b} ÷ {b}", a
    return f"{a} * {c} - {b}", f"{a} × {c} - {b}", a * c - b


def tool_calculator(rng: random.Random, zh: bool) -> dict:
    expr, pretty, result = _calc_expr(rng)
    ask = f"请帮我算一下 {pretty}。" if zh else f"Can you work out {pretty} for me?"
    answer = f"{pretty} = {result}。" if zh else f"{pretty} = {result}."
    conv = [
        _turn("human", ask),
        _call("calculator", {"expression": expr}),
        _obs({"result": result}),
        _turn("gpt", answer),
    ]
    return {"conversations": conv, "tools": _tools("calculator", "convert_currency")}


def tool_currency(rng: random.Random, zh: bool) -> dict:
    src, dst, rate, zh_src, zh_dst = rng.choice(RATES)
    amount = rng.choice([20, 50, 75, 100, 120, 250, 500, 1000])
    converted = round(amount * rate, 2)
    obs = {"amount": amount, "from_currency": src, "to_currency": dst, "rate": rate, "converted": converted}
    if zh:
        ask = f"{amount} {zh_src}能换多少{zh_dst}？"
        answer = f"按当前汇率 {rate} 计算，{amount} {zh_src}约合 {converted:.2f} {zh_dst}。"
    else:
        ask = f"How much is {amount} {src} in {dst}?"
        answer = f"At the current rate of {rate}, {amount} {src} is about {converted:,.2f} {dst}."
    args = {"amount": amount, "from_currency": src, "to_currency": dst}
    conv = [_turn("human", ask), _call("convert_currency", args), _obs(obs), _turn("gpt", answer)]
    return {"conversations": conv, "tools": _tools("convert_currency", "calculator")}


def tool_time(rng: random.Random) -> dict:
    city, zone = rng.choice(TIME_ZONES)
    local = f"{rng.randint(0, 23):02d}:{rng.randrange(0, 60, 5):02d}"
    obs = {"city": city, "timezone": zone, "local_time": local}
    conv = [
        _turn("human", f"What time is it in {city} at the moment?"),
        _call("get_local_time", {"city": city}),
        _obs(obs),
        _turn("gpt", f"It is {local} in {city} right now (time zone {zone})."),
    ]
    return {"conversations": conv, "tools": _tools("get_local_time", "get_weather")}


def tool_not_needed(rng: random.Random, i: int) -> dict:
    """Tools are offered, but the question does not need them."""
    if i % 2 == 0:
        row = rng.choice(_capitals())
        conv = [
            _turn("human", f"What is the capital of {row['en']}?"),
            _turn("gpt", f"The capital of {row['en']} is {row['capital']}."),
        ]
    else:
        conv = [
            _turn("human", "Hi! What can you help me with?"),
            _turn(
                "gpt",
                "Hello! I can check the current weather and the local time in a city, and I can "
                "answer general questions. What would you like to know?",
            ),
        ]
    return {"conversations": conv, "tools": _tools("get_weather", "get_local_time")}


def build_tool_conversations(rng: random.Random) -> list[dict]:
    convs = [tool_weather(rng, zh=i % 4 == 3) for i in range(12)]
    convs += [tool_weather_followup(rng) for _ in range(4)]
    convs += [tool_weather_compare(rng) for _ in range(4)]
    convs += [tool_calculator(rng, zh=i == 5) for i in range(6)]
    convs += [tool_currency(rng, zh=i == 4) for i in range(5)]
    convs += [tool_time(rng) for _ in range(4)]
    convs += [tool_not_needed(rng, i) for i in range(3)]
    for i, conv in enumerate(convs):
        if i % 3 == 0:
            zh = any("\u4e00" <= ch <= "\u9fff" for ch in conv["conversations"][0]["value"])
            conv["conversations"].insert(0, _turn("system", TOOL_SYSTEM_ZH if zh else TOOL_SYSTEM_EN))
    return convs


# --- plain conversations --------------------------------------------------------------------------------------------

SYSTEMS_EN = (
    "You are a helpful assistant.",
    "You are a patient maths tutor. Always show the calculation in your answer.",
    "You are a concise assistant. Keep every answer short and correct.",
    "You are a friendly geography teacher.",
)
SYSTEMS_ZH = (
    "你是一个乐于助人的助手。",
    "你是一名耐心的数学老师，回答时写出算式。",
    "你是一个简洁的助手，回答要简短准确。",
)
N_PLAIN_CONVERSATIONS = 112
N_OPENAI = 50


def _question(task: Task) -> str:
    return f"{task['instruction']}\n{task['input']}" if task["input"] else task["instruction"]


def _pool(rng: random.Random, mix) -> list[tuple[str, str]]:
    return [(_question(t), t["output"]) for fn, n in mix for t in fn(rng, max(1, n // 3))]


def _dialogues(rng: random.Random, n: int) -> list[tuple[str | None, list[tuple[str, str]]]]:
    """``n`` (system or None, [(question, answer), ...]) dialogues, about a quarter in Chinese."""
    pools = {False: _pool(rng, EN_MIX), True: _pool(rng, ZH_MIX)}
    out = []
    for i in range(n):
        zh = i % 4 == 3
        if i % 2 == 0:
            turns = (zh_chain if zh else en_chain)(rng, (i // 2) % 5)
        else:
            turns = rng.sample(pools[zh], rng.randint(1, 3))
        system = rng.choice(SYSTEMS_ZH if zh else SYSTEMS_EN) if i % 3 == 0 else None
        out.append((system, turns))
    return out


def build_sharegpt(rng: random.Random) -> list[dict]:
    records = []
    for system, turns in _dialogues(rng, N_PLAIN_CONVERSATIONS):
        conv = [_turn("system", system)] if system else []
        for question, answer in turns:
            conv += [_turn("human", question), _turn("gpt", answer)]
        records.append({"conversations": conv, "tools": ""})
    records += build_tool_conversations(rng)
    rng.shuffle(records)
    return records


def build_openai(rng: random.Random) -> list[dict]:
    records = []
    for system, turns in _dialogues(rng, N_OPENAI):
        messages = [{"role": "system", "content": system}] if system else []
        for question, answer in turns:
            messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        records.append({"messages": messages})
    return records


# --------------------------------------------------------------------------------------------------------------------
# dataset_info.json
# --------------------------------------------------------------------------------------------------------------------

ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}
RANKING_COLUMNS = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}
SHAREGPT_TAGS = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
OPENAI_TAGS = {
    "role_tag": "role",
    "content_tag": "content",
    "user_tag": "user",
    "assistant_tag": "assistant",
    "system_tag": "system",
}
LOCAL_DATASETS: dict[str, dict] = {
    "wiki_demo": {"file_name": "wiki_demo.txt", "columns": {"prompt": "text"}},
    "alpaca_demo_en": {"file_name": "alpaca_demo_en.json", "columns": ALPACA_COLUMNS},
    "alpaca_demo_zh": {"file_name": "alpaca_demo_zh.json", "columns": ALPACA_COLUMNS},
    "comparison_demo_en": {"file_name": "comparison_demo_en.json", "ranking": True, "columns": RANKING_COLUMNS},
    "comparison_demo_zh": {"file_name": "comparison_demo_zh.json", "ranking": True, "columns": RANKING_COLUMNS},
    "sharegpt_demo": {
        "file_name": "sharegpt_demo.json",
        "formatting": "sharegpt",
        "columns": {"messages": "conversations", "tools": "tools"},
        "tags": SHAREGPT_TAGS,
    },
    "openai_demo": {
        "file_name": "openai_demo.json",
        "formatting": "sharegpt",
        "columns": {"messages": "messages"},
        "tags": OPENAI_TAGS,
    },
    "self_cognition": {
        "file_name": "self_cognition.json",
        "columns": {"prompt": "instruction", "query": "input", "response": "output"},
    },
}
HUB_DATASETS: dict[str, dict] = {
    "alpaca_gpt4_en": {"hf_hub_url": "llamafactory/alpaca_gpt4_en"},
    "alpaca_gpt4_zh": {"hf_hub_url": "llamafactory/alpaca_gpt4_zh"},
}


def sha1_of(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()


def build_dataset_info(out_dir: Path) -> dict[str, dict]:
    info: dict[str, dict] = {}
    for name, entry in LOCAL_DATASETS.items():
        entry = dict(entry)
        sha1 = sha1_of(out_dir / entry["file_name"])
        info[name] = {"file_name": entry.pop("file_name"), "file_sha1": sha1, **entry}
    info.update(HUB_DATASETS)
    return info


# --------------------------------------------------------------------------------------------------------------------
# writing and validation
# --------------------------------------------------------------------------------------------------------------------


def _dump(path: Path, obj: object) -> None:
    path.write_text(json.dumps(obj, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def write_all(out_dir: Path) -> dict[str, int]:
    """Write every demo file and dataset_info.json; returns row counts per dataset."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, object] = {
        "alpaca_demo_en.json": build_alpaca(random.Random(SEED + 1), EN_MIX, en_chain),
        "alpaca_demo_zh.json": build_alpaca(random.Random(SEED + 2), ZH_MIX, zh_chain),
        "comparison_demo_en.json": build_ranking(random.Random(SEED + 3), EN_RANKING_MIX, ADVICE_EN, RUDE_EN, " "),
        "comparison_demo_zh.json": build_ranking(random.Random(SEED + 4), ZH_RANKING_MIX, ADVICE_ZH, RUDE_ZH, ""),
        "sharegpt_demo.json": build_sharegpt(random.Random(SEED + 5)),
        "openai_demo.json": build_openai(random.Random(SEED + 6)),
        "self_cognition.json": build_self_cognition(),
    }
    wiki = build_wiki(random.Random(SEED))
    (out_dir / "wiki_demo.txt").write_text("\n".join(wiki) + "\n", encoding="utf-8")
    for file_name, rows in files.items():
        _dump(out_dir / file_name, rows)
    _dump(out_dir / "dataset_info.json", build_dataset_info(out_dir))
    return validate(out_dir)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_alpaca(rows: list[dict], where: str, history: bool = True) -> None:
    for i, row in enumerate(rows):
        keys = {"instruction", "input", "output"} | ({"history"} if history else set())
        _check(set(row) == keys, f"{where}[{i}]: keys {sorted(row)}")
        _check(bool(row["instruction"].strip()) and bool(row["output"].strip()), f"{where}[{i}]: empty field")
        for turn in row.get("history", []):
            _check(len(turn) == 2 and all(isinstance(t, str) and t for t in turn), f"{where}[{i}]: bad history")


def _check_ranking(rows: list[dict], where: str) -> None:
    for i, row in enumerate(rows):
        _check(set(row) == {"instruction", "input", "chosen", "rejected"}, f"{where}[{i}]: keys {sorted(row)}")
        _check(row["chosen"].strip() != row["rejected"].strip(), f"{where}[{i}]: chosen == rejected")
        _check(bool(row["chosen"].strip() and row["rejected"].strip()), f"{where}[{i}]: empty answer")


def _check_sharegpt(rows: list[dict], where: str) -> int:
    """Returns the number of conversations that contain a tool call."""
    with_calls = 0
    for i, row in enumerate(rows):
        turns = row["conversations"]
        tool_names: set[str] = set()
        if row["tools"]:
            tools = json.loads(row["tools"])
            _check(isinstance(tools, list) and bool(tools), f"{where}[{i}]: tools must be a non-empty list")
            for tool in tools:
                _check({"name", "description", "parameters"} <= set(tool), f"{where}[{i}]: incomplete tool schema")
                tool_names.add(tool["name"])
        if turns and turns[0]["from"] == "system":
            turns = turns[1:]
        _check(len(turns) >= 2 and len(turns) % 2 == 0, f"{where}[{i}]: odd number of turns")
        for j, turn in enumerate(turns):
            allowed = ("human", "observation") if j % 2 == 0 else ("gpt", "function_call")
            _check(turn["from"] in allowed, f"{where}[{i}] turn {j}: {turn['from']} not in {allowed}")
            _check(bool(turn["value"].strip()), f"{where}[{i}] turn {j}: empty value")
            if turn["from"] == "function_call":
                call = json.loads(turn["value"])
                _check(
                    set(call) == {"name", "arguments"} and isinstance(call["arguments"], dict),
                    f"{where}[{i}] turn {j}: bad call",
                )
                _check(call["name"] in tool_names, f"{where}[{i}] turn {j}: unknown tool {call['name']}")
            if turn["from"] == "observation":
                _check(turns[j - 1]["from"] == "function_call", f"{where}[{i}] turn {j}: observation without call")
                json.loads(turn["value"])
        _check(turns[0]["from"] == "human" and turns[-1]["from"] == "gpt", f"{where}[{i}]: must run human..gpt")
        with_calls += any(t["from"] == "function_call" for t in turns)
    return with_calls


def _check_openai(rows: list[dict], where: str) -> None:
    for i, row in enumerate(rows):
        messages = row["messages"]
        if messages and messages[0]["role"] == "system":
            messages = messages[1:]
        _check(len(messages) >= 2 and len(messages) % 2 == 0, f"{where}[{i}]: odd number of messages")
        for j, message in enumerate(messages):
            _check(message["role"] == ("user" if j % 2 == 0 else "assistant"), f"{where}[{i}] message {j}: role")
            _check(bool(message["content"].strip()), f"{where}[{i}] message {j}: empty")


EXPECTED_ROWS = {
    "alpaca_demo_en": 300,
    "alpaca_demo_zh": 300,
    "comparison_demo_en": 200,
    "comparison_demo_zh": 200,
    "sharegpt_demo": 150,
    "openai_demo": 50,
    "self_cognition": 60,
}


def validate(out_dir: Path) -> dict[str, int]:
    """Check formats, counts and checksums of everything in ``out_dir``; returns row counts."""
    info = json.loads((out_dir / "dataset_info.json").read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    for name, entry in info.items():
        if "file_name" not in entry:
            _check("hf_hub_url" in entry, f"{name}: needs file_name or hf_hub_url")
            continue
        path = out_dir / entry["file_name"]
        _check(sha1_of(path) == entry["file_sha1"], f"{name}: file_sha1 does not match {entry['file_name']}")
        if path.suffix == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            _check(all(line.strip() and line.count(". ") >= 2 for line in lines), f"{name}: short or empty line")
            _check(len(set(lines)) == len(lines), f"{name}: duplicate paragraphs")
            counts[name] = len(lines)
            continue
        rows = json.loads(path.read_text(encoding="utf-8"))
        counts[name] = len(rows)
        if entry.get("ranking"):
            _check_ranking(rows, name)
        elif entry.get("formatting") == "sharegpt" and entry["columns"]["messages"] == "conversations":
            _check(_check_sharegpt(rows, name) >= 20, f"{name}: fewer than 20 tool-call conversations")
        elif entry.get("formatting") == "sharegpt":
            _check_openai(rows, name)
        else:
            _check_alpaca(rows, name, history="history" in entry["columns"])
        if name == "self_cognition":
            placeholders = ("{{name}}", "{{author}}")
            _check(all(any(p in row["output"] for p in placeholders) for row in rows), f"{name}: no placeholder")
    for name, expected in EXPECTED_ROWS.items():
        _check(counts.get(name) == expected, f"{name}: {counts.get(name)} rows, expected {expected}")
    _check(280 <= counts["wiki_demo"] <= 320, f"wiki_demo: {counts['wiki_demo']} paragraphs")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "data", help="output folder (default: data/)")
    parser.add_argument("--check", action="store_true", help="only validate the files already in --out")
    args = parser.parse_args()
    counts = validate(args.out) if args.check else write_all(args.out)
    print(f"{'checked' if args.check else 'wrote'} {args.out.resolve()}")
    for name, count in counts.items():
        print(f"  {name:<20} {count:>4} rows")


if __name__ == "__main__":
    main()
